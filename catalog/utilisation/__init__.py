"""Utilisation figures (issue 15): how much of the catalog is subscribed and used, per department and for the platform.

Every use of an item is an audit event (``data.read`` and ``data.verify`` allowed, ``data.deliver`` done); the events
are folded into daily and monthly rollups (``fold``) at the start of each computation, so the figures are always
current without reading the whole trail (``figures``, ``history``)."""
