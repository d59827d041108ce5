"""qdash.sim"""
