"""The escrow ledger on a real SQLite file: a charge the price list allows is paid in full even above the
reservation (the client's estimate was low); otherwise payment stops at the reservation; the books balance."""

from __future__ import annotations

import pytest

from client_agent.ledger import Ledger
from client_agent.storage import Store


@pytest.mark.parametrize(("beyond", "paid"), [(True, 0.0003), (False, 0.0002)])
def test_a_charge_above_the_reservation(tmp_path, beyond: bool, paid: float):
    ledger = Ledger(Store(f"sqlite:///{tmp_path}/ledger.db"))
    assert ledger.reserve("sub-1", 1, "c1", 0.0002)
    assert ledger.release("sub-1", 1, "c1", 0.0002, 0.0003, beyond_reservation=beyond) == pytest.approx(paid)
    view = ledger.view()
    assert view["balances"]["contractor:c1"] == pytest.approx(paid)
    assert view["total"] == pytest.approx(0.0, abs=1e-12)
    assert ledger.release("sub-1", 1, "c1", 0.0002, 0.0003, beyond_reservation=beyond) == 0.0  # settled once


def test_what_the_ledger_reports_is_never_negative(tmp_path):
    heard: list[tuple[str, float]] = []
    ledger = Ledger(Store(f"sqlite:///{tmp_path}/ledger.db"), observe=lambda kind, usd: heard.append((kind, usd)))
    ledger.reserve("sub-1", 1, "c1", 0.0002)
    ledger.release("sub-1", 1, "c1", 0.0002, 0.0005, beyond_reservation=True)
    assert all(amount >= 0 for _, amount in heard)
    reserved = sum(a for k, a in heard if k == "reserved")
    assert reserved == pytest.approx(sum(a for k, a in heard if k in ("released", "refunded")))
