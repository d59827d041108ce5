"""The account answers of the simulated exchange: ``/fapi/v2|v3/account``, ``/fapi/v2|v3/balance``,
``/fapi/v2|v3/positionRisk`` and ``/fapi/v1/leverageBracket``, with Binance's field names and
types (numbers as strings, times as int ms).

All numbers come from one :func:`figures` pass over an account at the current mark prices (USDT):
wallet balance, unrealized PnL, margin balance (wallet + unrealized), position and open-order
initial margins, maintenance margin, available balance (:meth:`Trading.available`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..binance import order_fields as F
from ..binance.orders import position_risk_row
from .accounts import Account
from .margin import Position, brackets, liquidation_price
from .trading import Trading


@dataclass
class PositionFigures:
    pos: Position
    mark: float
    upnl: float
    notional: float
    initial: float
    maint: float
    liquidation: float


@dataclass
class Figures:
    wallet: float
    cross_wallet: float
    upnl: float
    cross_upnl: float
    position_im: float
    order_im: float
    maint: float
    available: float
    positions: dict[str, PositionFigures]

    @property
    def margin_balance(self) -> float:
        return self.wallet + self.upnl


def figures(trading: Trading, acc: Account) -> Figures:
    """Every number of the account answers at the current marks."""
    marks = {s: trading.mark(s) for s in acc.positions}
    cross_wallet = acc.wallet - acc.isolated_wallets()
    per = {}
    for s, p in acc.positions.items():
        m = marks[s]
        per[s] = PositionFigures(p, m, p.unrealized(m), p.amt * m, p.initial(m), p.maint(m), 0.0)
    cross = [f for f in per.values() if f.pos.margin_type == "CROSSED" and f.pos.amt]
    for f in per.values():
        if not f.pos.amt:
            continue
        if f.pos.margin_type == "ISOLATED":
            f.liquidation = liquidation_price(f.pos, f.pos.wallet)
        else:
            others = [g for g in cross if g is not f]
            f.liquidation = liquidation_price(f.pos, cross_wallet, sum(g.maint for g in others),
                                              sum(g.upnl for g in others))
    return Figures(acc.wallet, cross_wallet, sum(f.upnl for f in per.values()),
                   sum(f.upnl for f in cross), sum(f.initial for f in per.values()),
                   trading.open_order_margin(acc), sum(f.maint for f in per.values()),
                   trading.available(acc, marks), per)


def _s(x: float) -> str:
    return f"{x:.8f}"


def balances(fig: Figures, acc: Account, now: int) -> list[dict]:
    """``/fapi/v2/balance`` and ``/fapi/v3/balance``."""
    avail = max(fig.available, 0.0)
    return [{"accountAlias": acc.key[:8], "asset": "USDT", "balance": _s(fig.wallet),
             "crossWalletBalance": _s(fig.cross_wallet), "crossUnPnl": _s(fig.cross_upnl),
             "availableBalance": _s(avail), "maxWithdrawAmount": _s(avail),
             "marginAvailable": True, "updateTime": now}]


def account(fig: Figures, trading: Trading, acc: Account, now: int, version: int) -> dict:
    """``/fapi/v2/account`` (every symbol's position) or ``/fapi/v3/account`` (open ones)."""
    avail = max(fig.available, 0.0)
    totals = {"totalInitialMargin": _s(fig.position_im + fig.order_im),
              "totalMaintMargin": _s(fig.maint), "totalWalletBalance": _s(fig.wallet),
              "totalUnrealizedProfit": _s(fig.upnl), "totalMarginBalance": _s(fig.margin_balance),
              "totalPositionInitialMargin": _s(fig.position_im),
              "totalOpenOrderInitialMargin": _s(fig.order_im),
              "totalCrossWalletBalance": _s(fig.cross_wallet),
              "totalCrossUnPnl": _s(fig.cross_upnl), "availableBalance": _s(avail),
              "maxWithdrawAmount": _s(avail)}
    asset = {"asset": "USDT", "walletBalance": _s(fig.wallet), "unrealizedProfit": _s(fig.upnl),
             "marginBalance": _s(fig.margin_balance), "maintMargin": _s(fig.maint),
             "initialMargin": _s(fig.position_im + fig.order_im),
             "positionInitialMargin": _s(fig.position_im),
             "openOrderInitialMargin": _s(fig.order_im),
             "crossWalletBalance": _s(fig.cross_wallet), "crossUnPnl": _s(fig.cross_upnl),
             "availableBalance": _s(avail), "maxWithdrawAmount": _s(avail),
             "marginAvailable": True, "updateTime": now}
    symbols = trading.filters if version == 2 else [
        s for s, f in fig.positions.items() if f.pos.amt or acc.open_orders(s)]
    positions = []
    for s in symbols:
        f = fig.positions.get(s) or _flat(trading, acc, s)
        p, pf = f.pos, trading.filters[s]
        row = {"symbol": s, "positionSide": F.POSITION_SIDE,
               "positionAmt": f"{p.amt:.{pf.qty_decimals}f}",
               "unrealizedProfit": _s(f.upnl), "isolatedMargin": _s(_iso_margin(f)),
               "notional": _s(f.notional), "isolatedWallet": _s(p.wallet),
               "initialMargin": _s(f.initial), "maintMargin": _s(f.maint),
               "updateTime": p.update_time}
        if version == 2:
            row.update({"positionInitialMargin": _s(f.initial), "openOrderInitialMargin": "0",
                        "leverage": str(p.leverage), "isolated": p.margin_type == "ISOLATED",
                        "entryPrice": _s(p.entry), "breakEvenPrice": _s(p.entry),
                        "maxNotional": str(int(_max_notional(s, p.leverage))),
                        "bidNotional": "0", "askNotional": "0"})
        positions.append(row)
    out = {"feeTier": 0, "canTrade": True, "canDeposit": True, "canWithdraw": True,
           "feeBurn": False, "tradeGroupId": -1, "updateTime": 0, "multiAssetsMargin": False
           } if version == 2 else {}
    out.update(totals)
    out.update({"assets": [asset], "positions": positions})
    return out


def position_risk(fig: Figures, trading: Trading, acc: Account, version: int,
                  symbol: str | None = None) -> list[dict]:
    """``/fapi/v2/positionRisk`` (every symbol) or ``/fapi/v3/positionRisk`` (open ones)."""
    symbols = [symbol] if symbol else list(trading.filters)
    out = []
    for s in symbols:
        f = fig.positions.get(s) or _flat(trading, acc, s)
        p, pf = f.pos, trading.filters[s]
        if version == 3 and not p.amt and not acc.open_orders(s):
            continue
        amount, mark = f"{p.amt:.{pf.qty_decimals}f}", _s(f.mark)
        if version == 3:
            row = position_risk_row(
                symbol=s, positionSide=F.POSITION_SIDE, amount=amount, entry_price=_s(p.entry),
                breakEvenPrice=_s(p.entry), mark_price=mark, unrealized=_s(f.upnl),
                liquidationPrice=_s(f.liquidation), isolatedMargin=_s(_iso_margin(f)),
                notional=_s(f.notional), marginAsset="USDT", isolatedWallet=_s(p.wallet),
                initialMargin=_s(f.initial), maintMargin=_s(f.maint),
                positionInitialMargin=_s(f.initial), openOrderInitialMargin="0", adl=0,
                bidNotional="0", askNotional="0", updateTime=p.update_time)
        else:
            row = position_risk_row(
                symbol=s, amount=amount, entry_price=_s(p.entry), breakEvenPrice=_s(p.entry),
                mark_price=mark, unrealized=_s(f.upnl), liquidationPrice=_s(f.liquidation),
                leverage=str(p.leverage),
                maxNotionalValue=str(int(_max_notional(s, p.leverage))),
                marginType="isolated" if p.margin_type == "ISOLATED" else "cross",
                isolatedMargin=_s(_iso_margin(f)), isAutoAddMargin="false",
                positionSide=F.POSITION_SIDE, notional=_s(f.notional),
                isolatedWallet=_s(p.wallet), updateTime=p.update_time)
        out.append(row)
    return out


def leverage_brackets(symbol: str) -> dict:
    """One symbol's entry of ``/fapi/v1/leverageBracket``."""
    return {"symbol": symbol, "notionalCoef": 1.0, "brackets": [
        {"bracket": b.bracket, "initialLeverage": b.max_leverage, "notionalCap": int(b.cap),
         "notionalFloor": int(b.floor), "maintMarginRatio": b.rate, "cum": round(b.cum, 8)}
        for b in brackets(symbol)]}


def _max_notional(symbol: str, leverage: int) -> float:
    """The largest notional a leverage allows: the cap of the last bracket that allows it."""
    ok = [b.cap for b in brackets(symbol) if b.max_leverage >= leverage]
    return max(ok) if ok else brackets(symbol)[0].cap


def _iso_margin(f: PositionFigures) -> float:
    return f.pos.wallet + f.upnl if f.pos.margin_type == "ISOLATED" else 0.0


def _flat(trading: Trading, acc: Account, symbol: str) -> PositionFigures:
    p = acc.positions.get(symbol) or Position(symbol)
    return PositionFigures(p, trading.mark(symbol), 0.0, 0.0, 0.0, 0.0, 0.0)
