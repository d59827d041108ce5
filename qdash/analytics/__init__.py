"""qdash.analytics"""
