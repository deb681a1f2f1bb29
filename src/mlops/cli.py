"""`mlops`: one verb per lifecycle step; workflows and the local demo call the same verbs.

Each sub-command is bound to its handler; argument types check formats and bounds, so a
bad flag ends in one sentence and exit 2 before any work starts.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from mlops import batch, data, demo, feedback, history, init, lifecycle
from mlops import card as card_module
from mlops.backends import BACKENDS, selected
from mlops.backends.base import Endpoint, EndpointStats
from mlops.config import ENVIRONMENTS, Autoscale
from mlops.context import Context
from mlops.errors import MlopsError
from mlops.paths import project_root, state_home
from mlops.state import private_umask


class Parser(argparse.ArgumentParser):
    def error(self, message: str):
        """One sentence naming the flag, not the usage block."""
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


# ---- argument types ------------------------------------------------------------------


def reference(parse: Callable[[str], object]) -> Callable[[str], str]:
    """NAME:VERSION checked by parse before any work starts; an empty value (an unset step
    output) is refused, never "the default"."""

    def check(text: str) -> str:
        try:
            parse(text)
        except MlopsError as problem:
            raise argparse.ArgumentTypeError(str(problem)) from None
        return text

    return check


model_ref = reference(lifecycle.parse_model_ref)
data_ref = reference(data.parse_data_ref)


def bounded(kind: type, low: float, high: float) -> Callable[[str], float]:
    """A number above low and at most high."""

    def check(text: str):
        try:
            value = kind(text)
        except ValueError:
            shown = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {shown}") from None
        if not low < value <= high:
            raise argparse.ArgumentTypeError(f"must be above {low} and at most {high}, not {text}")
        return value

    return check


# ---- handlers: each gets the context and the parsed flags ----------------------------


def _train(ctx: Context, args) -> None:
    lifecycle.train(ctx, args.env, args.data)


def _data_register(ctx: Context, args) -> None:
    data.register(ctx, args.env, args.asset, args.path, args.base)


def _data_list(ctx: Context, args) -> None:
    data.list_versions(ctx, args.env, args.asset)


def _register(ctx: Context, args) -> None:
    lifecycle.register(ctx, args.env, args.job)


def _share(ctx: Context, args) -> None:
    lifecycle.share(ctx, args.env, args.model)


def _gate(ctx: Context, args) -> None:
    lifecycle.gate(ctx, args.env, args.model)


def _deploy(ctx: Context, args) -> None:
    lifecycle.deploy(ctx, args.env, args.model)


def _test(ctx: Context, args) -> None:
    lifecycle.test(ctx, args.env, args.model)


def _promote(ctx: Context, args) -> None:
    lifecycle.promote(ctx, args.env, args.model, write=args.write)


def _monitor(ctx: Context, args) -> None:
    lifecycle.monitor(ctx, args.env, args.since, args.labels)


def _feedback(ctx: Context, args) -> None:
    feedback.run(ctx, args.env, args.labels, args.since, args.out)


def _profile(ctx: Context, args) -> None:
    lifecycle.profile_endpoint(ctx, args.env, args.concurrency, args.max_requests, args.seconds)


def _batch(ctx: Context, args) -> None:
    batch.score(ctx, args.env, args.input)


def _batch_deploy(ctx: Context, args) -> None:
    batch.deploy(ctx, args.env, args.model)


def _key(ctx: Context, args) -> None:
    print(lifecycle.endpoint_key(ctx, args.env))  # bare, for $(mlops key --env prod)


def _status(ctx: Context, args) -> None:
    report = lifecycle.status(ctx, args.env or list(ENVIRONMENTS))
    shown = {env: [_endpoint_view(e) for e in endpoints] for env, endpoints in report.items()}
    print(json.dumps(shown, indent=2, sort_keys=True))


def _endpoint_view(endpoint: Endpoint) -> dict:
    return {
        "endpoint": endpoint.name,
        "scoring_uri": endpoint.scoring_uri,
        "traffic": endpoint.traffic,
        "mirror_traffic": endpoint.mirror_traffic,  # left on by a killed soak?
        "deployments": {
            d.name: {
                "model": d.model,
                "state": d.state,
                "sha256": d.artifact_sha256,
                **({"autoscale": _autoscale_view(d.autoscale)} if d.autoscale else {}),
            }
            for d in endpoint.deployments.values()
        },
        "measured": _stats_view(endpoint.stats),
    }


def _autoscale_view(scale: Autoscale) -> str:
    return (
        f"{scale.min_instances}..{scale.max_instances} instances on {scale.cpu_percent}% CPU, "
        f"starting at {scale.default_instances}"
    )


def _stats_view(stats: EndpointStats | None) -> dict | str:
    """The endpoint's own figures; on Azure they are its Azure Monitor metrics (README)."""
    if stats is None:
        return "unavailable (on Azure: the endpoint's metrics in Azure Monitor, see the README)"
    return {
        "requests": stats.requests,
        "since_start": stats.total,
        "p50_ms": stats.p50_ms,
        "p95_ms": stats.p95_ms,
        "error_rate": round(stats.error_rate, 4),
        "by_status": stats.status_classes,
    }


def _card(ctx: Context, args) -> None:
    card_module.show(ctx, args.env, args.model)


def _history(ctx: Context, args) -> None:
    history.show(ctx, args.env, args.last)


def _down(ctx: Context, args) -> None:
    envs = list(ENVIRONMENTS) if args.all else args.env
    if not envs:
        raise MlopsError("say which environments to stop: --env NAME (repeatable) or --all")
    _confirm(ctx, envs, args.yes)
    lifecycle.down(ctx, envs)


def _confirm(ctx: Context, envs: list[str], yes: bool) -> None:
    """Local endpoints are cheap to restart; cloud ones are not, so those need a yes."""
    if selected(ctx.backend_name) == "local" or yes:
        return
    if not sys.stdin.isatty():
        raise MlopsError("deleting cloud endpoints needs --yes when there is no terminal to ask")
    answer = input(f"Delete every endpoint in {', '.join(envs)}? [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise MlopsError("nothing deleted")


def _demo(ctx: Context, args) -> None:
    demo.run(ctx)


def _init(ctx: Context, args) -> None:
    if args.check:
        problems = init.check(ctx.root)
        if problems:
            raise MlopsError("; ".join(problems) + "; run `mlops init` to answer and render again")
        print(f"every dependent file agrees with {init.ANSWERS_FILE}")
        return
    raw = init.load_answers(ctx.root)
    raw.update({q.key: getattr(args, q.key) for q in init.QUESTIONS if getattr(args, q.key)})
    if not args.yes:
        raw = init.ask(raw)  # from the terminal or piped input; input ending early stops it
    raw, github_note = init.reconcile_with_github(raw)
    if github_note:
        print(github_note)
    changed = init.write_all(init.render(ctx.root, init.validate(raw)))
    for path in changed:
        print(f"  wrote {path.relative_to(ctx.root).as_posix()}")
    print(
        "  nothing changed"
        if not changed
        else f"  {len(changed)} file(s) rendered from {init.ANSWERS_FILE}"
    )
    print(init.NEXT_STEPS)


# ---- the parser ------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="mlops", description=__doc__.split("\n\n")[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--backend", choices=BACKENDS, help="default: $MLOPS_BACKEND or local")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name: str, handler, help_text: str, env: str | None = None, model: str | None = None):
        """A sub-command run as a progress stage; model: None (no --model), "required", or the
        help of its default."""
        sub = verbs.add_parser(name, help=help_text, description=help_text, parents=[common])
        sub.set_defaults(handler=handler, stage=True)
        if env:
            sub.add_argument("--env", choices=ENVIRONMENTS, default=env, help=f"default: {env}")
        if model == "required":
            sub.add_argument(
                "--model",
                metavar="NAME:VERSION",
                type=model_ref,
                required=True,
                help="the model, by version",
            )
        elif model:
            sub.add_argument("--model", metavar="NAME:VERSION", type=model_ref, help=model)
        return sub

    sub = verb("train", _train, "Run the training job in an environment's workspace.", env="dev")
    sub.add_argument(
        "--data",
        metavar="NAME:VERSION",
        type=data_ref,
        help="train on this data version (default: the env file's training.data)",
    )
    _data_verbs(verbs, common)
    sub = verb(
        "register", _register, "Register a training job's model with its lineage tags.", env="dev"
    )
    sub.add_argument("--job", required=True, help="the job id `mlops train` printed")
    verb(
        "share",
        _share,
        "Copy a registered model version into the shared registry.",
        env="dev",
        model="required",
    )
    verb(
        "gate",
        _gate,
        "Judge a shared model against the floors and, on the same exam, the champion.",
        env="prod",
        model="required",
    )
    verb(
        "deploy",
        _deploy,
        "Blue/green rollout of a shared model version to the environment's endpoint.",
        env="preprod",
        model="default: the env file's model.version (nothing to do when it is empty)",
    )
    verb(
        "test",
        _test,
        "Smoke-test the environment's endpoint.",
        env="preprod",
        model="also check that this version takes all its traffic",
    )
    sub = verb(
        "promote",
        _promote,
        "Check preprod serves the model, gate it, render the pull request for prod.yml.",
        env="prod",
        model="required",
    )
    sub.add_argument(
        "--write", action="store_true", help="also write environments/prod.yml (CI only)"
    )
    sub = verb(
        "monitor",
        _monitor,
        "Drift of collected inputs vs the served model's training data.",
        env="prod",
    )
    sub.add_argument(
        "--since",
        metavar="WINDOW",
        help="30m, 24h, 7d, an ISO date or time, or all (default: the env file's monitor.window)",
    )
    sub.add_argument(
        "--labels",
        type=Path,
        metavar="FILE.csv",
        help="true labels (request_id,label) to judge performance by, besides monitor.labels",
    )
    sub = verb(
        "feedback",
        _feedback,
        "Join true labels with collected requests: the served model's metrics per day.",
        env="prod",
    )
    sub.add_argument(
        "--labels", type=Path, required=True, metavar="FILE.csv", help="request_id,label rows"
    )
    sub.add_argument(
        "--since",
        "--window",
        dest="since",
        metavar="WINDOW",
        help="30m, 24h, 7d, an ISO date or time, or all (default: the env file's monitor.window)",
    )
    sub.add_argument(
        "--out", type=Path, metavar="FILE.csv", help="write the labelled rows as training data"
    )
    sub = verb(
        "profile",
        _profile,
        "Load-test the endpoint (bounded); recommend an instance count.",
        env="preprod",
    )
    sub.add_argument(
        "--seconds", type=bounded(float, 0, 300), default=10.0, help="at most this long (0-300)"
    )
    sub.add_argument(
        "--max-requests",
        type=bounded(int, 0, 100_000),
        default=2000,
        help="at most this many (1-100000, default 2000)",
    )
    sub.add_argument(
        "--concurrency", type=bounded(int, 0, 32), default=2, help="client threads (1-32)"
    )
    sub = verb("batch", _batch, "Score a file as a job on the batch endpoint.", env="prod")
    sub.add_argument("--input", required=True, help="CSV or Parquet file, URI or data asset")
    verb(
        "batch-deploy",
        _batch_deploy,
        "Put the model on the batch endpoint; it becomes default after a smoke job.",
        env="prod",
        model="default: the env file's model.version (nothing to do when it is empty)",
    )

    def plain(name: str, handler, help_text: str, parents=(common,)):
        """A sub-command that prints its own output, not a progress stage."""
        sub = verbs.add_parser(name, help=help_text, parents=list(parents))
        sub.set_defaults(handler=handler, stage=False)
        return sub

    sub = plain("key", _key, "Print the endpoint's key, for 'Authorization: Bearer <key>'.")
    sub.add_argument("--env", choices=ENVIRONMENTS, default="prod", help="default: prod")
    sub = plain("status", _status, "Show endpoints, deployments and traffic.")
    sub.add_argument("--env", choices=ENVIRONMENTS, action="append", help="default: all")
    sub = plain("card", _card, "Print a shared model version's model card.")
    sub.add_argument("--env", choices=ENVIRONMENTS, default="prod", help="default: prod")
    sub.add_argument(
        "--model", metavar="NAME:VERSION", type=model_ref, required=True, help="the model version"
    )
    sub = plain("history", _history, "Print the audit trail: deploys, rollbacks, promotions.")
    sub.add_argument("--env", choices=ENVIRONMENTS, default="prod", help="default: prod")
    sub.add_argument("--last", type=bounded(int, 0, 10_000), help="only the newest N entries")
    sub = plain("down", _down, "Stop and delete the endpoints of environments.")
    sub.add_argument("--env", choices=ENVIRONMENTS, action="append", help="repeat for several")
    sub.add_argument("--all", action="store_true", help="every environment")
    sub.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    plain("demo", _demo, "Run the whole lifecycle locally, dev to prod.")
    sub = plain(
        "init", _init, "Turn a fork into its own project: answers -> every dependent file.", ()
    )
    sub.add_argument("--check", action="store_true", help="fail if a dependent file disagrees")
    sub.add_argument("--yes", action="store_true", help="never prompt; use flags and project.yml")
    for question in init.QUESTIONS:
        sub.add_argument(
            f"--{question.key.replace('_', '-')}", dest=question.key, help=question.prompt
        )
    return parser


def _data_verbs(verbs, common) -> None:
    """`mlops data register|list`: the training data's versions (mlops.data)."""
    group = verbs.add_parser("data", help="Register and list training data versions.")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    sub = actions.add_parser(
        "register",
        parents=[common],
        help="Make a file or folder (checked against the contract) a data asset version.",
    )
    sub.set_defaults(handler=_data_register, stage=True)
    sub.add_argument("--path", required=True, help="a CSV file, or a folder of CSV files")
    sub.add_argument(
        "--base",
        metavar="NAME:VERSION",
        type=data_ref,
        help="the new version is this version's rows followed by the file's",
    )
    sub_list = actions.add_parser("list", parents=[common], help="List a data asset's versions.")
    sub_list.set_defaults(handler=_data_list, stage=False)
    for each in (sub, sub_list):
        each.add_argument("--env", choices=ENVIRONMENTS, default="dev", help="default: dev")
        each.add_argument("--asset", required=True, help="the data asset's name")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    root = project_root()
    ctx = Context(root, state_home(root), backend_name=getattr(args, "backend", None))
    try:
        with private_umask():  # what it and its jobs write is this user's only
            if args.stage:
                with ctx.progress.stage(f"{args.verb} ({args.env})"):
                    args.handler(ctx, args)
            else:
                args.handler(ctx, args)
        return 0
    except MlopsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
