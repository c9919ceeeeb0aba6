"""The access policy's health, for data officers: drift between the Casbin policy, the principals and the grants."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/policy", tags=["policy"])
