"""Billing robo (請求管理ロボ, seed 001): card registration by token on a payer's payment method."""

from app.gateway.billingrobo.client import CREDIT_CARD_TOKEN_PATH, BillingRoboClient, interpret
from app.gateway.billingrobo.errors import lookup

__all__ = ["CREDIT_CARD_TOKEN_PATH", "BillingRoboClient", "interpret", "lookup"]
