"""qdash.backtest"""
