"""Operations: freshness of each item's feed, health and metrics of the platform."""
