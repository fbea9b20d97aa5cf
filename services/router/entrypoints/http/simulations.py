"""What if, over the API: ``POST /v1/simulations`` runs a desk (and a proposal) on traffic or a trace, as
``switchboard simulate`` does (docs/simulation.md); ``GET /v1/simulations/{id}`` reads its status and, once
done, its report.

A run takes seconds to a minute of CPU, so it never runs on the router's event loop: it goes to one worker
process, started at the first request (``spawn``: a fresh interpreter, never a fork of a process that holds
database and broker connections). Runs wait their turn there. Results stay in this replica's memory: the
last ``KEPT`` per replica, and a run is read from the replica that took it. A restart forgets them.
"""

from __future__ import annotations

import multiprocessing
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from services.router.domain.errors import NotFound
from services.router.entrypoints.http.deps import RouterDep, SupervisorPrincipal
from services.router.simulation import runs
from shared import problems

router = APIRouter(tags=["simulations"])

KEPT = 50  # finished runs kept per replica, the oldest forgotten first
WAITING = 4  # runs waiting or running per replica; more are refused (429) until one finishes
RETRY_AFTER_S = 30
Status = Literal["queued", "running", "done", "failed"]


class SimulationIn(BaseModel):
    """The files ``switchboard simulate`` takes, as JSON values (docs/simulation.md)."""

    model_config = ConfigDict(extra="forbid")
    desk: dict[str, Any] = Field(description="The desk as configured now: profiles, queues, agents, shifts.")
    proposal: dict[str, Any] | None = Field(None, description="A changed desk, run on the same traffic and compared.")
    traffic: dict[str, Any] | None = Field(None, description="Synthetic traffic: start, hours, streams.")
    trace: Annotated[list[dict[str, Any]], Field(max_length=runs.MAX_ARRIVALS)] | None = Field(
        None, description="Trace lines (arrivals and presence changes) instead of traffic."
    )
    handle: Any = Field(None, description="For trace lines without handle_s: a handle-time distribution.")
    patience: Any = Field(None, description="For trace lines without patience_s: a patience distribution.")
    seed: int = Field(1, description="The random seed: the same inputs and seed give the same results.")
    drain_h: Annotated[float, Field(ge=0, le=48)] = Field(2.0, description="Hours run after the window.")


@dataclass
class Run:
    id: str
    tenant_id: str
    created_at: datetime
    future: Future[dict[str, Any]]

    @property
    def status(self) -> Status:
        if not self.future.done():
            return "running" if self.future.running() else "queued"
        return "failed" if self.future.exception() is not None else "done"

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "status": self.status, "created_at": self.created_at}
        if out["status"] == "done":
            out["report"] = self.future.result()
        elif out["status"] == "failed":
            error = self.future.exception()
            refused = isinstance(error, runs.SimulationRefused)
            out["error"] = str(error) if refused else f"the run stopped: {type(error).__name__}"
        return out


def _spawned_worker() -> Executor:
    return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))


class Simulations:
    """This replica's runs: one worker process, created when first needed, and the runs' futures."""

    def __init__(self, make_worker: Callable[[], Executor] = _spawned_worker) -> None:
        self._make_worker = make_worker
        self._pool: Executor | None = None
        self._runs: OrderedDict[str, Run] = OrderedDict()

    def submit(self, tenant_id: str, body: dict[str, Any], now: datetime) -> Run | None:
        """The run, queued; None when ``WAITING`` runs are already waiting or running."""
        if sum(not r.future.done() for r in self._runs.values()) >= WAITING:
            return None
        try:
            future = self._worker().submit(runs.run, body)
        except BrokenProcessPool:  # the worker died (killed, out of memory): the next one starts afresh
            self._pool = None
            future = self._worker().submit(runs.run, body)
        run = Run(str(uuid.uuid4()), tenant_id, now, future)
        self._runs[run.id] = run
        self._forget()
        return run

    def get(self, tenant_id: str, run_id: str) -> Run | None:
        run = self._runs.get(run_id)
        return run if run is not None and run.tenant_id == tenant_id else None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _worker(self) -> Executor:
        if self._pool is None:
            self._pool = self._make_worker()
            weakref.finalize(self, self._pool.shutdown, wait=False, cancel_futures=True)  # the app is gone
        return self._pool

    def _forget(self) -> None:
        done = [run_id for run_id, run in self._runs.items() if run.future.done()]
        for run_id in done[: max(0, len(done) - KEPT)]:
            del self._runs[run_id]


def simulations_of(request: Request) -> Simulations:
    """The app's runs, created with the first request that needs them (the worker with the first run)."""
    state = request.app.state
    if getattr(state, "simulations", None) is None:
        state.simulations = Simulations()
    found: Simulations = state.simulations
    return found


@router.post("/v1/simulations", status_code=202, response_model=None)
async def start_simulation(
    body: SimulationIn, request: Request, router_: RouterDep, principal: SupervisorPrincipal
) -> dict[str, Any] | JSONResponse:
    """Run the desk (and the proposal beside it) on the traffic or trace, in the background. Answers at once
    with the run's id; ``GET /v1/simulations/{id}`` reads its report when done. A desk the simulator cannot use
    is refused with 422, naming the field. Results are kept in memory by the replica that took the run."""
    raw = body.model_dump(exclude_none=True)
    try:
        runs.check(raw)
    except runs.SimulationRefused as exc:
        return problems.problem(422, str(exc), slug="validation")
    run = simulations_of(request).submit(principal.tenant_id, raw, router_.clock())
    if run is None:
        return problems.problem(
            429,
            f"{WAITING} simulations are already waiting or running here; retry later.",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    return {"id": run.id, "status": run.status, "created_at": run.created_at}


@router.get("/v1/simulations/{simulation_id}")
async def get_simulation(simulation_id: str, request: Request, principal: SupervisorPrincipal) -> dict[str, Any]:
    """``queued``, ``running``, ``done`` with ``report`` (``baseline``, ``proposal``, ``comparison``, as
    ``report.json`` of ``switchboard simulate``), or ``failed`` with ``error``. Another tenant's run, or one this
    replica does not hold (forgotten, or taken by another replica), is not found."""
    run = simulations_of(request).get(principal.tenant_id, simulation_id)
    if run is None:
        raise NotFound(f"no simulation {simulation_id}")
    return run.as_json()
