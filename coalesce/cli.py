"""`coalesce`: the command line of the exchange's services."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

from client_agent.models import ContractorRegistration
from coalesce.client import AsyncExchange, Exchange, ExchangeError
from contractor_agent.admission import Limits
from contractor_agent.app import create_app
from contractor_agent.build import load_card, worker_kinds
from contractor_agent.identity import Identity
from contractor_agent.store import SqlTaskStore
from shared.economics.decision.strategies import LIVE_STRATEGIES
from shared.runtime.observability import configure_logging
from shared.runtime.serving import bind_socket, public_url, serve_forever, uvicorn_server
from shared.runtime.settings import (
    anthropic_settings_from_env,
    api_keys_from_env,
    completion_settings_from_env,
    contractor_tokens_from_env,
    judge_settings_from_env,
    nameserver_from_env,
    openai_settings_from_env,
)
from shared.security.auth import ApiKeys
from shared.security.net_policy import resolver
from shared.workers.factory import CHAT_KINDS, COMPLETION_KINDS, LLM_KINDS, build_workers, embedded_llm_settings
from shared.workers.llm import LLMSettings
from shared.workers.local_model import GEMMA_ALIAS, MODEL_ALIAS, MODELS, LocalLLMServer
from simulator.experiments import PRESETS


def _embedded_llm(stack: ExitStack, model: str = MODEL_ALIAS) -> LLMSettings:
    print(f"starting the embedded local model ({model} on llama.cpp) ...", flush=True)
    server = stack.enter_context(LocalLLMServer(model=model))
    return embedded_llm_settings(server)


def contractor_serve(args: argparse.Namespace) -> int:
    card = load_card(args.card)
    kinds = worker_kinds(card, override=args.worker)
    with ExitStack() as stack:
        needs = set(kinds.values())
        openai_settings = openai_settings_from_env()
        if openai_settings is None and needs & CHAT_KINDS:
            openai_settings = _embedded_llm(stack)
        completion_settings = completion_settings_from_env()
        if completion_settings is None and needs & COMPLETION_KINDS:
            completion_settings = _embedded_llm(stack, GEMMA_ALIAS)
        anthropic_settings = anthropic_settings_from_env() if "anthropic" in needs else None
        workers = build_workers(kinds, openai_settings, anthropic_settings, completion_settings)
        sock = bind_socket(args.host, args.port)
        url = args.public_url or public_url(sock)
        limits = None
        if args.max_concurrent or args.max_queued is not None:
            profile = card.coalesce
            limits = Limits(
                max_concurrent=args.max_concurrent or (profile.max_concurrent_tasks if profile else 4),
                max_queued=args.max_queued
                if args.max_queued is not None
                else (profile.max_queued_tasks if profile else 16),
            )
        identity = Identity.from_key_dir(
            args.key_dir or Path(".coalesce") / "keys" / args.card.stem,
            previous_signing_key=args.previous_signing_key,
            certificate=args.skill_certificate,
            plaintext_accepted=not args.encrypted_only,
            api_keys=_api_keys(args),
        )
        store = SqlTaskStore(args.db or f"sqlite:///.coalesce/{args.card.stem}.db")
        identity.replay_guard = store.replay_guard()  # replayed first envelopes stay refused across restarts
        app = create_app(
            card,
            workers,
            base_url=url,
            limits=limits,
            identity=identity,
            store=store,
            allow_private_push=args.allow_private_push,
            resolve=resolver(nameserver_from_env()),
        )
        server = uvicorn_server(app, log_level=args.log_level)
        llm_skills = [s for s, k in kinds.items() if k in LLM_KINDS]
        print(
            f"contractor {card.name!r} serving {len(kinds)} skills ({len(llm_skills)} on an LLM) at {url}",
            flush=True,
        )
        serve_forever(server, sock)
    return 0


def _api_keys(args: argparse.Namespace) -> ApiKeys:
    """Keys from --api-key and the environment (COALESCE_API_KEYS, comma-separated): a key on a command line
    shows in the process list, so the environment is the better place."""
    keys = list(args.api_key) + api_keys_from_env()
    return ApiKeys(keys, rate_per_s=args.rate_limit, burst=max(1, int(args.rate_limit * 2)))


def client_serve(args: argparse.Namespace) -> int:
    from client_agent.api import create_app as create_client_app
    from client_agent.build import build_service
    from client_agent.gold import load_file, load_items
    from client_agent.quality import QualityConfig
    from client_agent.service import ClientConfig
    from coalesce.datagen import gold_bank

    with ExitStack() as stack:
        llm = openai_settings_from_env() or _embedded_llm(stack)
        config = ClientConfig(
            strategy=args.strategy,
            allow_private_contractors=args.allow_private_contractors,
            trusted_attestors=frozenset(args.trust_attestor),
            contractor_tokens=contractor_tokens_from_env(),
            nameserver=nameserver_from_env(),
            quality=QualityConfig(
                probes=not args.no_probes,
                probe_budget_share=args.probe_budget_share,
                agreement_rate=args.agreement_rate,
            ),
        )
        skills = [s.strip() for s in args.local_skills.split(",") if s.strip()] if args.local_skills else None
        try:
            gold = [item for path in args.gold for item in load_file(path)] if args.gold else None
        except ValueError as error:
            raise SystemExit(f"coalesce client serve: {error}") from None
        if gold is None:
            gold = load_items(gold_bank())
        service = build_service(
            args.db, llm, config, contractors=args.contractor, skills=skills, judge=judge_settings_from_env(), gold=gold
        )
        sock = bind_socket(args.host, args.port)
        url = args.public_url or public_url(sock)
        app = create_client_app(service, _api_keys(args), results_dir=args.results, public_url=url)
        server = uvicorn_server(app, log_level=args.log_level)
        print(
            f"client agent at {url} (API docs at {url}docs), strategy {args.strategy}, database {args.db}", flush=True
        )
        serve_forever(server, sock)
    return 0


def llm_serve(args: argparse.Namespace) -> int:
    with LocalLLMServer(port=args.port, host=args.host, model=args.model) as server:
        print(f"local model {server.model!r} at {server.base_url} (Ctrl-C stops it)", flush=True)
        threading.Event().wait()
    return 0


def attest(args: argparse.Namespace) -> int:
    import asyncio

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from coalesce.attest import attest as run_attestation
    from coalesce.attest import attestor_id, write_certificate
    from shared.a2a.cards import CardError, FetchPolicy
    from shared.security.keys import load_or_create

    key = load_or_create(args.key, Ed25519PrivateKey)
    assert isinstance(key, Ed25519PrivateKey)
    policy = FetchPolicy(allow_private=args.allow_private_contractors, resolve=resolver(nameserver_from_env()))
    try:
        certificate, results = asyncio.run(run_attestation(args.card_url, key, policy, args.items))
    except (CardError, ValueError, httpx.HTTPError) as error:
        raise SystemExit(f"coalesce attest: {error}") from None
    for result in results:
        print(f"  {result.line()}")
    write_certificate(args.out, certificate)
    measured = sum(r.attested() is not None for r in results)
    print(f"certificate for {measured} skills written to {args.out}; attestor key id {attestor_id(key)}")
    return 0


def market_up(args: argparse.Namespace) -> int:
    from coalesce.market import Market, market_table

    print("starting the local market: the embedded models, nine contractors, the client ...", flush=True)
    with Market(args.state_dir, strategy=args.strategy, extra_contractors=args.contractor_card) as market:
        print(f"market ready {market.client_url}", flush=True)
        for name, url in market.contractor_urls().items():
            print(f"  {name:<22} {url}")
        print(f"(logs in {args.state_dir / 'logs'}; Ctrl-C stops everything)", flush=True)
        with httpx.Client(base_url=market.client_url, timeout=10) as http:
            previous = ""
            while True:
                table = market_table(http)
                if table != previous and not args.quiet:
                    print(f"\n{time.strftime('%H:%M:%S')}\n{table}", flush=True)
                    previous = table
                time.sleep(args.refresh)


def market_demo(args: argparse.Namespace) -> int:
    from coalesce.demo import demo
    from coalesce.market import Market, running_client

    client = args.client or running_client(args.state_dir)
    if client is not None:
        demo(client)
        return 0
    print("starting the local market (the embedded models, nine contractors, the client) ...", flush=True)
    with Market(args.state_dir) as market:
        print(f"market ready {market.client_url}", flush=True)
        demo(market.client_url)
    return 0


def market_register(args: argparse.Namespace) -> int:
    from coalesce.market import running_client

    client = args.client or running_client(args.state_dir)
    if client is None:
        raise RuntimeError(f"no market is up from {args.state_dir} (start one with `coalesce market up`, or --client)")
    with Exchange(client) as exchange:
        try:
            registered = exchange.register(ContractorRegistration(card_url=args.card_url, price_usd=args.price_usd))
        except ExchangeError as error:
            raise RuntimeError(f"the client refused {args.card_url}: {error.message}") from None
    print(f"registered {registered.name!r} ({registered.id}, A2A {registered.a2a_version}) with skills", end=" ")
    print(", ".join(registered.skills))
    return 0


def embeddings_export(args: argparse.Namespace) -> int:
    from shared.economics.skills import export_onnx

    print(f"skill-matching model exported to {export_onnx(args.out)}")
    return 0


def mcp_stdio(args: argparse.Namespace) -> int:
    """The exchange at `--client` as an MCP server on stdin/stdout."""
    from client_agent.mcp_server import RestBackend, build_server

    async def serve() -> None:
        async with AsyncExchange(args.client, api_key=args.api_key) as exchange:
            await build_server(RestBackend(exchange)).run_stdio_async()

    asyncio.run(serve())
    return 0


def market_validate(args: argparse.Namespace) -> int:
    from coalesce.datagen import EVALUATION_SIZES
    from coalesce.validation.run import GOLD_SAMPLE, validate

    scale = args.scale
    sizes = {skill: max(2, round(n * scale)) for skill, n in EVALUATION_SIZES.items()}
    gold = {skill: max(2, round(n * scale)) for skill, n in GOLD_SAMPLE.items()}
    command = "coalesce market validate" + (f" --scale {scale:g}" if scale != 1 else "") + f" --seeds {args.seeds}"
    validate(
        args.state_dir,
        args.out,
        command,
        sizes,
        gold,
        seeds=args.seeds,
        live_items=args.live_items,
        recording_path=args.recording,
    )
    print((args.out / "results.md").read_text())
    return 0


def simulate(args: argparse.Namespace) -> int:
    from simulator.experiments import main as run_preset

    result = run_preset(args.preset, Path(args.out), args.runs, args.workers)
    print(result["table"])
    print(
        f"{len(result['rows'])} rows in {result['seconds']:.1f} s; written to {args.out}: results.csv, results.md, "
        + ", ".join(p.name for p in result["figures"])
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coalesce", description=__doc__)
    parser.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    parser.add_argument(
        "--log-format", default="text", choices=["text", "json"], help="json: one object per line with the task ids"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    contractor = commands.add_parser("contractor", help="contractor agents").add_subparsers(
        dest="action", required=True
    )
    serve = contractor.add_parser("serve", help="serve a contractor agent over A2A")
    serve.add_argument("--card", required=True, type=Path, help="the agent card file (see agent_cards/)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0, help="0 picks a free port")
    serve.add_argument("--worker", choices=["echo"], help="serve every skill with this worker")
    serve.add_argument("--public-url", help="the URL clients use, when it differs from the bound address")
    serve.add_argument("--max-concurrent", type=int, help="tasks worked on at once (default: the card's)")
    serve.add_argument("--max-queued", type=int, help="tasks waiting for a slot (default: the card's)")
    serve.add_argument("--db", help="where tasks persist, an SQLAlchemy URL (default sqlite:///.coalesce/CARD.db)")
    serve.add_argument("--key-dir", type=Path, help="its keys (created on first start; default .coalesce/keys/CARD)")
    serve.add_argument(
        "--previous-signing-key", type=Path, help="during a key rotation: the old signing key, to co-sign the card"
    )
    serve.add_argument(
        "--skill-certificate",
        type=Path,
        help="a certificate file from `coalesce attest` (read again whenever it changes; it may appear later)",
    )
    serve.add_argument("--encrypted-only", action="store_true", help="refuse messages outside the E2E channel")
    serve.add_argument(
        "--allow-private-push", action="store_true", help="send push notifications to loopback and private addresses"
    )
    _auth_arguments(serve)
    serve.set_defaults(run=contractor_serve)

    client = commands.add_parser("client", help="the client agent").add_subparsers(dest="action", required=True)
    client_server = client.add_parser("serve", help="serve the client agent's HTTP API")
    client_server.add_argument("--host", default="127.0.0.1")
    client_server.add_argument("--port", type=int, default=0, help="0 picks a free port")
    client_server.add_argument(
        "--public-url", help="where callers reach it (its A2A card's URL), when not the bound address"
    )
    client_server.add_argument("--db", default="sqlite:///coalesce-client.db", help="an SQLAlchemy database URL")
    client_server.add_argument(
        "--strategy",
        default="thompson",
        choices=LIVE_STRATEGIES,
    )
    client_server.add_argument(
        "--contractor",
        action="append",
        default=[],
        metavar="CARD_URL",
        help="register this contractor at start (repeatable; retried until it answers)",
    )
    client_server.add_argument(
        "--local-skills",
        help="comma-separated skills the client does itself (default: all it has workers for)",
    )
    client_server.add_argument(
        "--allow-private-contractors",
        action="store_true",
        help="accept contractors on loopback and private networks (a local market); refused by default",
    )
    client_server.add_argument(
        "--trust-attestor",
        action="append",
        default=[],
        metavar="KEY_ID",
        help="the key id (JWK thumbprint) of an attestor whose skill certificates count (repeatable)",
    )
    client_server.add_argument("--results", type=Path, help="a simulator results folder to show on the dashboard")
    client_server.add_argument(
        "--gold",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="a JSON file of known-answer items for probes (repeatable; default: the generated bank, 100 per skill)",
    )
    client_server.add_argument("--no-probes", action="store_true", help="send no gold probes")
    client_server.add_argument(
        "--probe-budget-share", type=float, default=0.25, help="probes cost at most this share of all spending"
    )
    client_server.add_argument(
        "--agreement-rate", type=float, default=0.1, help="the share of label and number subtasks sent to 2-3 agents"
    )
    _auth_arguments(client_server)
    client_server.set_defaults(run=client_serve)

    llm = commands.add_parser("llm", help="the embedded local model").add_subparsers(dest="action", required=True)
    llm_server = llm.add_parser("serve", help="serve the embedded model over an OpenAI-compatible API")
    llm_server.add_argument("--host", default="127.0.0.1")
    llm_server.add_argument("--port", type=int, default=None)
    llm_server.add_argument("--model", default=MODEL_ALIAS, choices=MODELS, help="which embedded model to serve")
    llm_server.set_defaults(run=llm_serve)

    sim = commands.add_parser("simulate", help="run the market simulator's experiments")
    sim.add_argument("--preset", required=True, choices=PRESETS)
    sim.add_argument("--out", required=True, help="a folder for results.csv, results.md and the plots")
    sim.add_argument("--runs", type=int, default=20, help="runs per configuration (default 20, as the paper)")
    sim.add_argument("--workers", type=int, default=None, help="parallel processes (default: one per core)")
    sim.set_defaults(run=simulate)

    embeddings = commands.add_parser("embeddings", help="the skill-matching model").add_subparsers(
        dest="action", required=True
    )
    export = embeddings.add_parser("export", help="export it for ONNX Runtime (the lean images run it without torch)")
    export.add_argument("--out", type=Path, required=True, help="a folder for model.onnx and tokenizer.json")
    export.set_defaults(run=embeddings_export)

    mcp = commands.add_parser("mcp", help="serve a running client service as an MCP server over stdio")
    mcp.add_argument("--client", required=True, help="the client service's URL")
    mcp.add_argument("--api-key", default=None, help="its API key, when it takes keys")
    mcp.set_defaults(run=mcp_stdio)

    attestation = commands.add_parser(
        "attest", help="measure a contractor's skills on fresh known-answer items and certify the scores"
    )
    attestation.add_argument("card_url", help="the contractor's card URL (or its base URL)")
    attestation.add_argument("--key", type=Path, required=True, help="the attestor's Ed25519 key (created if missing)")
    attestation.add_argument("--out", type=Path, required=True, help="where to write the certificate (JSON)")
    attestation.add_argument("--items", type=int, default=8, help="fresh items per skill (default 8)")
    attestation.add_argument("--allow-private-contractors", action="store_true", help="allow loopback addresses")
    attestation.set_defaults(run=attest)

    market = commands.add_parser("market", help="the local market").add_subparsers(dest="action", required=True)
    up = market.add_parser("up", help="start the embedded models, nine contractors and the client; Ctrl-C stops all")
    up.add_argument("--strategy", default="thompson", choices=LIVE_STRATEGIES)
    up.add_argument("--contractor-card", action="append", default=[], type=Path, help="one more contractor's card")
    up.add_argument("--refresh", type=float, default=5.0, help="seconds between market table updates")
    up.add_argument("--quiet", action="store_true", help="no market table")
    up.set_defaults(run=market_up)
    market_demo_parser = market.add_parser("demo", help="run the four task types' data sets through the market")
    market_demo_parser.add_argument("--client", help="a running client's URL (default: the market up, or a new one)")
    market_demo_parser.set_defaults(run=market_demo)
    register = market.add_parser("register", help="register a contractor with the running market's client")
    register.add_argument("card_url")
    register.add_argument("--price-usd", type=float, help="the price per task of an agent whose card publishes none")
    register.add_argument("--client", help="the client's URL (default: the market up from --state-dir)")
    register.set_defaults(run=market_register)
    validation = market.add_parser(
        "validate", help="every agent on the held-out items, every strategy replayed on that recording, a live check"
    )
    validation.add_argument("--scale", type=float, default=1.0, help="the share of the full evaluation set to use")
    validation.add_argument("--seeds", type=int, default=5, help="seeds per strategy in the replay (at least 3)")
    validation.add_argument("--live-items", type=int, default=40, help="items of the live check (0: none)")
    validation.add_argument("--recording", type=Path, help="replay this recording instead of recording again")
    validation.add_argument("--out", type=Path, default=Path("docs/results/validation"))
    validation.set_defaults(run=market_validate)
    for sub in (up, market_demo_parser, register, validation):
        sub.add_argument("--state-dir", type=Path, default=Path(".coalesce/market"), help="keys, databases, logs")
    return parser


def _auth_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api-key", action="append", default=[], help="an accepted API key (repeatable; or COALESCE_API_KEYS)"
    )
    parser.add_argument("--rate-limit", type=float, default=50.0, help="requests per second per API key")


def _stop(signum: int, frame: object) -> None:
    """SIGTERM ends the command like Ctrl-C, after servers shut down gracefully: children stopped, exit 0."""
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    # Ctrl-C stops the command even when it was started from a background job (which inherits SIGINT ignored)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    configure_logging(args.log_level, args.log_format)
    try:
        return args.run(args)
    except (ValueError, RuntimeError) as error:
        print(f"coalesce: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
