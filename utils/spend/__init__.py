"""Spend and quotas: the ledger of finished generations, the daily caps, the statistics."""
