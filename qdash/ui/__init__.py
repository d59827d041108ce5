"""qdash.ui"""
