"""qdash.alerts"""
