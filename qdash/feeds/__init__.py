"""qdash.feeds"""
