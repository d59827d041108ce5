"""qdash.server"""
