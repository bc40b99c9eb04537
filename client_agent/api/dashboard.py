"""The dashboard's pages and files, and the simulator results it shows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from client_agent.errors import NotFound

DASHBOARD = Path(__file__).resolve().parent.parent / "dashboard"
RESULT_SUFFIXES = frozenset({".png", ".svg", ".md", ".csv"})

router = APIRouter(prefix="/dashboard", include_in_schema=False)


@router.get("")
async def dashboard() -> FileResponse:
    return FileResponse(DASHBOARD / "index.html")


@router.get("/tasks/{task_id}")
async def dashboard_task(task_id: str) -> FileResponse:
    return FileResponse(DASHBOARD / "task.html")


@router.get("/results")
def results(request: Request) -> dict[str, Any]:
    results_dir: Path | None = request.app.state.results_dir
    if results_dir is None or not results_dir.is_dir():
        return {"folder": None, "files": []}
    files = sorted(p.name for p in results_dir.iterdir() if p.is_file() and p.suffix in RESULT_SUFFIXES)
    return {"folder": results_dir.name, "files": files}


@router.get("/results/{name}")
def result_file(name: str, request: Request) -> FileResponse:
    results_dir: Path | None = request.app.state.results_dir
    path = (results_dir / name) if results_dir is not None else None
    if path is None or path.name != name or path.suffix not in RESULT_SUFFIXES or not path.is_file():
        raise NotFound(f"no result file {name!r}")
    return FileResponse(path)
