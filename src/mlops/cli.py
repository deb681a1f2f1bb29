"""`mlops`: one verb per lifecycle step; workflows and the local demo call the same verbs."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mlops import init, lifecycle
from mlops.backends import BACKENDS
from mlops.config import ENVIRONMENTS
from mlops.errors import DriftDetected, MlopsError
from mlops.paths import project_root, state_home
from mlops.progress import Progress


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlops", description=__doc__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--backend", choices=BACKENDS, help="default: $MLOPS_BACKEND or local")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name: str, help_text: str, env: str | None = None, model: str | None = None):
        """A sub-command; model: None (no --model), "required", or the help of its default."""
        sub = verbs.add_parser(name, help=help_text, description=help_text, parents=[common])
        if env:
            sub.add_argument("--env", choices=ENVIRONMENTS, default=env, help=f"default: {env}")
        if model == "required":
            sub.add_argument(
                "--model", metavar="NAME:VERSION", required=True, help="the model, by version"
            )
        elif model:
            sub.add_argument("--model", metavar="NAME:VERSION", help=model)
        return sub

    verb("train", "Run the training job in an environment's workspace.", env="dev")
    sub = verb("register", "Register a training job's model with its lineage tags.", env="dev")
    sub.add_argument("--job", required=True, help="the job id `mlops train` printed")
    verb(
        "share",
        "Copy a registered model version into the shared registry.",
        env="dev",
        model="required",
    )
    verb(
        "gate",
        "Judge a shared model against the floors and, on the same exam, the champion.",
        env="prod",
        model="required",
    )
    verb(
        "deploy",
        "Blue/green rollout of a shared model version to the environment's endpoint.",
        env="preprod",
        model="default: the env file's model.version (nothing to do when it is empty)",
    )
    verb(
        "test",
        "Smoke-test the environment's endpoint.",
        env="preprod",
        model="also check that this version takes all its traffic",
    )
    sub = verb(
        "promote",
        "Check preprod serves the model, gate it, render the pull request for prod.yml.",
        env="prod",
        model="required",
    )
    sub.add_argument(
        "--write", action="store_true", help="also write environments/prod.yml (CI only)"
    )
    sub = verb(
        "monitor", "Drift of collected inputs vs the served model's training data.", env="prod"
    )
    sub.add_argument(
        "--since",
        metavar="WINDOW",
        help="30m, 24h, 7d, an ISO date or time, or all (default: the env file's monitor.window)",
    )
    verb("key", "Print the endpoint's key, for 'Authorization: Bearer <key>'.", env="prod")
    sub = verb(
        "profile", "Load-test the endpoint (bounded); recommend an instance count.", env="preprod"
    )
    sub.add_argument("--seconds", type=float, default=10.0, help="at most this long (default 10)")
    sub.add_argument(
        "--max-requests", type=int, default=2000, help="at most this many (default 2000)"
    )
    sub.add_argument("--concurrency", type=int, default=2, help="client threads (default 2)")
    sub = verbs.add_parser(
        "status", help="Show endpoints, deployments and traffic.", parents=[common]
    )
    sub.add_argument("--env", choices=ENVIRONMENTS, action="append", help="default: all")
    sub = verbs.add_parser(
        "down", help="Stop and delete the endpoints of environments.", parents=[common]
    )
    sub.add_argument("--env", choices=ENVIRONMENTS, action="append", help="repeat for several")
    sub.add_argument("--all", action="store_true", help="every environment")
    sub.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    verbs.add_parser("demo", help="Run the whole lifecycle locally, dev to prod.", parents=[common])
    sub = verbs.add_parser(
        "init", help="Turn a fork into its own project: answers -> every dependent file."
    )
    sub.add_argument("--check", action="store_true", help="fail if a dependent file disagrees")
    sub.add_argument("--yes", action="store_true", help="never prompt; use flags and project.yml")
    for question in init.QUESTIONS:
        sub.add_argument(
            f"--{question.key.replace('_', '-')}", dest=question.key, help=question.prompt
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    root = project_root()
    ctx = lifecycle.Context(
        root=root,
        home=state_home(root),
        backend_name=getattr(args, "backend", None),
        progress=Progress(),
    )
    try:
        return run(ctx, args)
    except MlopsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def run(ctx: lifecycle.Context, args: argparse.Namespace) -> int:
    verb = args.verb
    if verb == "demo":
        return demo(ctx)
    if verb == "init":
        return run_init(ctx, args)
    if verb == "status":
        print(lifecycle.as_json(lifecycle.status(ctx, args.env or list(ENVIRONMENTS))))
        return 0
    if verb == "down":
        envs = list(ENVIRONMENTS) if args.all else args.env
        if not envs:
            raise MlopsError("say which environments to stop: --env NAME (repeatable) or --all")
        _confirm(ctx, envs, args.yes)
        lifecycle.down(ctx, envs)
        return 0
    if verb == "key":  # bare, for $(mlops key --env prod)
        print(lifecycle.endpoint_key(ctx, args.env))
        return 0
    title = f"{verb} ({args.env})"
    with ctx.progress.stage(title):
        if verb == "train":
            lifecycle.train(ctx, args.env)
        elif verb == "register":
            lifecycle.register(ctx, args.env, args.job)
        elif verb == "share":
            lifecycle.share(ctx, args.env, args.model)
        elif verb == "gate":
            lifecycle.gate(ctx, args.env, args.model)
        elif verb == "deploy":
            lifecycle.deploy(ctx, args.env, args.model)
        elif verb == "test":
            lifecycle.test(ctx, args.env, args.model)
        elif verb == "promote":
            lifecycle.promote(ctx, args.env, args.model, write=args.write)
        elif verb == "monitor":
            lifecycle.monitor(ctx, args.env, args.since)
        elif verb == "profile":
            if not (
                0 < args.seconds <= 300
                and 0 < args.max_requests <= 100_000
                and 0 < args.concurrency <= 32
            ):
                raise MlopsError(
                    "profile bounds: --seconds 0-300, --max-requests 1-100000, --concurrency 1-32"
                )
            lifecycle.profile_endpoint(
                ctx, args.env, args.concurrency, args.max_requests, args.seconds
            )
    return 0


def run_init(ctx: lifecycle.Context, args: argparse.Namespace) -> int:
    if args.check:
        problems = init.check(ctx.root)
        if problems:
            raise MlopsError("; ".join(problems) + "; run `mlops init` to render them again")
        print(f"every dependent file agrees with {init.ANSWERS_FILE}")
        return 0
    raw = init.load_answers(ctx.root)
    raw.update({q.key: getattr(args, q.key) for q in init.QUESTIONS if getattr(args, q.key)})
    if not args.yes and sys.stdin.isatty():
        raw = _ask(raw)
    answers = init.validate(raw)
    changed = init.write_all(init.render(ctx.root, answers))
    for path in changed:
        print(f"  wrote {path.relative_to(ctx.root).as_posix()}")
    print(
        "  nothing changed"
        if not changed
        else f"  {len(changed)} file(s) rendered from {init.ANSWERS_FILE}"
    )
    print(init.NEXT_STEPS)
    return 0


def _ask(raw: dict) -> dict:
    """Prompt for each answer, showing the current one; ask again until it is valid."""
    answers = dict(raw)
    for question in init.QUESTIONS:
        while True:
            current = answers.get(question.key)
            shown = ",".join(map(str, current)) if isinstance(current, list) else current
            reply = input(f"{question.prompt} [{shown or ''}]: ").strip()
            candidate = reply or current
            try:
                question.check(candidate)
            except MlopsError as problem:
                print(f"  {problem}")
                continue
            answers[question.key] = candidate
            break
    return answers


def _confirm(ctx: lifecycle.Context, envs: list[str], yes: bool) -> None:
    """Local endpoints are cheap to restart; cloud ones are not, so those need a yes."""
    cloud = (ctx.backend_name or os.environ.get("MLOPS_BACKEND", "local")) != "local"
    if not cloud or yes:
        return
    if not sys.stdin.isatty():
        raise MlopsError("deleting cloud endpoints needs --yes when there is no terminal to ask")
    answer = input(f"Delete every endpoint in {', '.join(envs)}? [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise MlopsError("nothing deleted")


def demo(ctx: lifecycle.Context) -> int:
    """The whole lifecycle on this machine, each stage handing the next its job or model."""
    stage = ctx.progress.stage
    with stage("train (dev)"):
        job = lifecycle.train(ctx, "dev")
    with stage("register (dev)"):
        registered = lifecycle.register(ctx, "dev", job.id)
    with stage("share to the registry"):
        model = lifecycle.share(ctx, "dev", registered.ref).ref
    with stage("gate (challenger vs prod champion)"):
        lifecycle.gate(ctx, "prod", model)
    with stage("deploy (preprod, blue/green)"):
        lifecycle.deploy(ctx, "preprod", model)
    with stage("test (preprod)"):
        lifecycle.test(ctx, "preprod", model)
    with stage("promote (render the pull request for prod)"):
        lifecycle.promote(ctx, "prod", model)
    with stage("deploy (prod, the promoted version)"):
        lifecycle.deploy(ctx, "prod", model)
    with stage("test (prod)"):
        lifecycle.test(ctx, "prod", model)
    with stage("monitor (prod, after shifted traffic)"):
        lifecycle.send_shifted_traffic(ctx, "prod")
        try:
            lifecycle.monitor(ctx, "prod")
        except DriftDetected as drift:
            ctx.say(f"drift detected, as the shifted traffic should cause: {drift}")
    _where_to_look(ctx)
    return 0


def _where_to_look(ctx: lifecycle.Context) -> None:
    report = lifecycle.status(ctx, ["preprod", "prod"])
    print(f"\nDone in {ctx.progress.elapsed():.1f}s. Where to look:")
    for env, endpoints in report.items():
        for endpoint in endpoints:
            print(f"  {env:8} endpoint  {endpoint['scoring_uri']}")
    sample = Path("src") / "model" / "sample-request.json"
    prod = report["prod"][0]["scoring_uri"] if report["prod"] else "URL"
    print(
        "  try it    curl -s -H 'Content-Type: application/json' "
        '-H "Authorization: Bearer $(.venv/bin/mlops key --env prod)" '
        f"-d @{sample} {prod}"
    )
    store = ctx.home / "dev" / "mlflow.db"
    print(f"  runs      .venv/bin/mlflow ui --backend-store-uri sqlite:///{store}")
    print(f"  PR        {ctx.home / 'promotion' / 'pr-body.md'}")
    print(f"  drift     {ctx.home / 'prod' / 'monitor' / 'drift-report.md'}")
    print("  stop      make down")


if __name__ == "__main__":
    sys.exit(main())
