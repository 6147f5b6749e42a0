"""``clickstream invoke``: a function of ``template.yaml`` run as ``sam local invoke`` runs it, without Docker.

The function's handler (``functions/<dir>/app.py``, its ``Handler``) is called in this process with:

* **the environment the template gives it**: ``Globals`` and the function's own ``Environment.Variables``, every
  intrinsic evaluated (:func:`function_environment`) with the parameters' defaults (``Stage`` = ``local``) and
  ``!Ref`` of the stack's resources mapped to the laptop stack's names (:func:`local_names`); an ``env.json`` in
  ``sam local invoke``'s format (``--env-vars``) overrides them as SAM does (only variables the template declares;
  ``Parameters`` for every function, a function's logical id for that one); Lambda's own variables
  (``AWS_LAMBDA_FUNCTION_NAME`` …, ``AWS_SAM_LOCAL``) as ``sam local`` sets them; and, as the laptop's stand-in for
  the warehouse secret, ``WAREHOUSE_URL`` (a DuckDB file unless ``--warehouse``);
* **the laptop stack** (``clickstream_local.stack.local_stack``, moto in this process), **seeded** with what the
  samples in ``events/`` assume happened before (:data:`SEED_STEPS`, :func:`seed`): the sample hour's raw object (a
  generated hour of the store's traffic, posted through the real ingest handler, written where
  ``events/validate_sqs.json`` says Firehose wrote it), then the real handlers of every step before the invoked
  function, in the state machine's order, with the state machine's payloads. So ``Plan`` finds the object
  validated, ``Sessionize`` the run's manifest, ``Load`` every bucket's files, ``Aggregate`` the loaded warehouse,
  ``Commit`` the run and its lease. The clock is the sample hour's (:data:`SAMPLE_ARRIVAL`, :data:`SAMPLE_RUN_AT`).

The answer is what ``sam local invoke`` prints: the handler's return value as JSON, or Lambda's error payload
(``errorType``, ``errorMessage``, ``stackTrace``) for an unhandled exception; the function's log lines and metric
(EMF) lines are kept apart (:class:`Invocation`). ``events/`` samples of the pipeline steps are the payloads this
seeding produces (:func:`sample_chain`; ``scripts/refresh_sample_events.py`` rewrites them, a test compares).
"""

from __future__ import annotations

import contextlib
import copy
import gzip
import io
import json
import logging
import re
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clickstream_local.template import load_template, repo_root

FUNCTION_TYPE = "AWS::Serverless::Function"
LOCAL_STAGE = "local"
# The sample hour: the traffic of 09:00-09:50, written by Firehose and validated at 09:55, and the hourly run that
# starts at 10:05 for the window up to 10:00 (events/plan.json).
SAMPLE_HOUR = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SAMPLE_ARRIVAL = datetime(2026, 3, 2, 9, 55, tzinfo=UTC)
SAMPLE_RUN_AT = datetime(2026, 3, 2, 10, 5, tzinfo=UTC)
SAMPLE_TRAFFIC_EVENTS = (
    300  # the generator's events for the sample hour (seed 0): about 50 requests, 18 sessions
)
SAMPLE_TRAFFIC_SEED = 0
# What each function's samples assume already happened, in order (the functions before it in the data flow).
SEED_STEPS: dict[str, tuple[str, ...]] = {
    "IngestFunction": (),
    "ValidateFunction": ("raw",),
    "PlanFunction": ("raw", "validate"),
    "SessionizeFunction": ("raw", "validate", "plan"),
    "LoadFunction": ("raw", "validate", "plan", "sessionize"),
    "AggregateFunction": ("raw", "validate", "plan", "sessionize", "load"),
    "CommitFunction": ("raw", "validate", "plan", "sessionize", "load", "aggregate"),
}
# The function each sample of events/ is for, by its file name's first word (ingest_native.json -> IngestFunction).
SAMPLE_FUNCTIONS: dict[str, str] = {
    "ingest": "IngestFunction",
    "validate": "ValidateFunction",
    "plan": "PlanFunction",
    "sessionize": "SessionizeFunction",
    "load": "LoadFunction",
    "aggregate": "AggregateFunction",
    "commit": "CommitFunction",
}
# Lambda's variables, as ``sam local invoke`` sets them (AWS_SAM_LOCAL also keeps Powertools' tracer off).
PSEUDO_PARAMETERS = {"AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}
_OFFLINE_AWS: dict[str, str | None] = {
    "AWS_PROFILE": None,
    "AWS_SESSION_TOKEN": None,
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
_NO_VALUE = object()
_SUB = re.compile(r"\$\{(!?)([A-Za-z0-9_:.]+)\}")


class InvokeError(RuntimeError):
    """The function, the event, the env.json or the seeding cannot be used; the message says why."""


# -- the template's functions ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_dir: Path
    handler: str  # module.function
    memory_mb: int
    timeout_s: int
    properties: dict[str, Any]


def functions(template: Mapping[str, Any] | None = None) -> dict[str, FunctionSpec]:
    """The stack's Lambda functions whose code is a folder of the repository, by logical id."""
    template = template or load_template()
    glob = template.get("Globals", {}).get("Function", {})
    out: dict[str, FunctionSpec] = {}
    for name, resource in template["Resources"].items():
        if resource.get("Type") != FUNCTION_TYPE:
            continue
        props = {**glob, **resource.get("Properties", {})}
        code = props.get("CodeUri")
        if not isinstance(code, str):
            continue
        out[name] = FunctionSpec(
            logical_id=name,
            code_dir=repo_root() / code,
            handler=str(props.get("Handler", "app.lambda_handler")),
            memory_mb=int(props.get("MemorySize", 128)),
            timeout_s=int(props.get("Timeout", 3)),
            properties=resource.get("Properties", {}),
        )
    return out


def parameter_values(template: Mapping[str, Any], **given: Any) -> dict[str, Any]:
    """Every parameter: ``given`` or its default (CloudFormation's view of an unset parameter)."""
    unknown = set(given) - set(template["Parameters"])
    if unknown:
        raise InvokeError(f"not parameters of the template: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for name, spec in template["Parameters"].items():
        value = given.get(name, spec.get("Default"))
        if spec.get("Type") == "CommaDelimitedList" and isinstance(value, str):
            value = value.split(",") if value else [""]
        values[name] = value
    return values


# -- intrinsic functions ----------------------------------------------------------------------------------------
@dataclass
class Resolver:
    """Evaluates the intrinsics of environment values: parameters, pseudo parameters, conditions, and ``!Ref`` of
    a resource through ``names`` (logical id -> the value its ``Ref`` has in the target stack)."""

    template: Mapping[str, Any]
    params: Mapping[str, Any]
    names: Callable[[str], str]
    pseudo: Mapping[str, str] = field(default_factory=dict)

    def __call__(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self(n) for n in node) if v is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((fn, arg),) = node.items()
            if fn == "Ref":
                return self.ref(arg)
            if fn in ("Condition", "Fn::Condition"):
                return self.condition(arg)
            if fn == "Fn::If":
                name, yes, no = arg
                return self(yes if self.condition(name) else no)
            if fn == "Fn::Equals":
                left, right = (self(a) for a in arg)
                return str(left) == str(right) if not isinstance(left, list) else left == right
            if fn == "Fn::Not":
                return not self(arg[0])
            if fn == "Fn::And":
                return all(self(a) for a in arg)
            if fn == "Fn::Or":
                return any(self(a) for a in arg)
            if fn == "Fn::Join":
                return str(arg[0]).join(str(p) for p in self(arg[1]))
            if fn == "Fn::Select":
                return self(arg[1])[int(self(arg[0]))]
            if fn == "Fn::Sub":
                return self.sub(arg)
            if fn.startswith("Fn::"):
                raise InvokeError(f"{fn} cannot be evaluated outside CloudFormation")
        return {k: v for k, v in ((k, self(v)) for k, v in node.items()) if v is not _NO_VALUE}

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self.params:
            return self.params[name]
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.template["Resources"]:
            return self.names(name)
        raise InvokeError(f"!Ref {name}: no such parameter or resource")

    def condition(self, name: str) -> bool:
        return bool(self(self.template["Conditions"][name]))

    def sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

        def one(match: re.Match[str]) -> str:
            literal, name = match.groups()
            if literal:
                return "${" + name + "}"
            if name in variables:
                return str(self(variables[name]))
            if "." in name:
                raise InvokeError(f"${{{name}}}: an attribute is only known to a deployed stack")
            return str(self.ref(name))

        return _SUB.sub(one, text)


def function_environment(
    logical_id: str,
    resolve: Resolver,
    template: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """The variables the template gives ``logical_id``: ``Globals`` then its own, every value evaluated."""
    template = template or load_template()
    glob = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    own = template["Resources"][logical_id].get("Properties", {}).get("Environment", {}).get("Variables", {})
    out: dict[str, str] = {}
    for name, value in {**glob, **own}.items():
        resolved = resolve(value)
        out[name] = "" if resolved is _NO_VALUE else _env_text(resolved)
    return out


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


# -- the names of the target stack -------------------------------------------------------------------------------
def local_names(settings: Any) -> Callable[[str], str]:
    """``!Ref`` of the stack's resources in the laptop stack (``clickstream_local.stack``)."""
    names = {
        "RawBucket": settings.raw_bucket,
        "LakeBucket": settings.lake_bucket,
        "StateTable": settings.state_table,
        "DeliveryStream": settings.delivery_stream,
    }

    def lookup(logical_id: str) -> str:
        if logical_id not in names:
            raise InvokeError(f"!Ref {logical_id}: the laptop stack has no stand-in for it")
        return names[logical_id]

    return lookup


# The property holding a resource's name, by type, and how its Ref is made from that name.
_NAME_PROPERTIES: dict[str, tuple[str, str]] = {
    "AWS::S3::Bucket": ("BucketName", "{name}"),
    "AWS::DynamoDB::Table": ("TableName", "{name}"),
    "AWS::KinesisFirehose::DeliveryStream": ("DeliveryStreamName", "{name}"),
    "AWS::SQS::Queue": ("QueueName", "https://sqs.{region}.{suffix}/{account}/{name}"),
}


def deployed_names(template: Mapping[str, Any], resolve: Resolver) -> Callable[[str], str]:
    """``!Ref`` of the stack's resources as CloudFormation will make them: from each resource's name property
    (``BucketName: !Sub clickstream-${Stage}-raw-${AWS::AccountId}-${AWS::Region}`` …)."""

    def lookup(logical_id: str) -> str:
        resource = template["Resources"][logical_id]
        kind = resource.get("Type", "")
        if kind not in _NAME_PROPERTIES or _NAME_PROPERTIES[kind][0] not in resource.get("Properties", {}):
            raise InvokeError(
                f"!Ref {logical_id} ({kind}) is only known once deployed: give its value in env.json"
            )
        prop, shape = _NAME_PROPERTIES[kind]
        name = str(resolve(resource["Properties"][prop]))
        return shape.format(
            name=name,
            region=resolve.pseudo["AWS::Region"],
            account=resolve.pseudo["AWS::AccountId"],
            suffix=resolve.pseudo["AWS::URLSuffix"],
        )

    return lookup


def env_json(
    *,
    stage: str | None = None,
    account: str = "123456789012",
    region: str = "us-east-1",
    parameters: Mapping[str, Any] | None = None,
    template: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, str]]:
    """``sam local invoke --env-vars`` for every function: the variables the template gives each, with the
    parameters' defaults (``parameters`` and ``stage`` override) and the physical names the deployed stack's
    resources get in ``account`` and ``region``."""
    template = template or load_template()
    given = dict(parameters or {})
    if stage is not None:
        given["Stage"] = stage
    resolve = Resolver(
        template,
        parameter_values(template, **given),
        names=lambda _: "",
        pseudo={**PSEUDO_PARAMETERS, "AWS::AccountId": account, "AWS::Region": region},
    )
    resolve.names = deployed_names(template, resolve)
    return {name: function_environment(name, resolve, template) for name in functions(template)}


def apply_env_vars(
    env: dict[str, str], logical_id: str, env_vars: Mapping[str, Any] | None
) -> dict[str, str]:
    """``env`` with an env.json applied as ``sam local invoke`` applies it: ``Parameters`` to every function, then
    the function's own entry; only variables the template declares for it are replaced."""
    if not env_vars:
        return env
    if not isinstance(env_vars, Mapping):
        raise InvokeError("env.json must be a JSON object of function names (and Parameters) to variables")
    out = dict(env)
    for section in ("Parameters", logical_id):
        values = env_vars.get(section) or {}
        if not isinstance(values, Mapping):
            raise InvokeError(f"env.json: {section!r} must be an object of variable names to values")
        for name, value in values.items():
            if name in out:
                out[name] = _env_text(value)
    return out


# -- one invocation ------------------------------------------------------------------------------------------
@dataclass
class Invocation:
    """What one call of a handler gave back: its answer or Lambda's error payload, and what it printed."""

    function: str
    response: Any = None
    error: dict[str, Any] | None = None
    logs: list[str] = field(
        default_factory=list
    )  # the function's JSON log lines and anything else it printed

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def payload(self) -> Any:
        """What ``sam local invoke`` prints: the response, or the error payload."""
        return self.response if self.error is None else self.error

    def metrics(self) -> list[dict[str, Any]]:
        """The EMF documents among the lines (CloudWatch's embedded metric format)."""
        return [doc for doc in _json_lines(self.logs) if isinstance(doc.get("_aws"), dict)]

    def log_records(self) -> list[dict[str, Any]]:
        """The function's structured log lines (Powertools' JSON), without the metric documents."""
        return [doc for doc in _json_lines(self.logs) if "_aws" not in doc and "level" in doc]


def _json_lines(lines: list[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        with contextlib.suppress(ValueError):
            doc = json.loads(line)
            if isinstance(doc, dict):
                yield doc


@contextlib.contextmanager
def captured_output() -> Iterator[io.StringIO]:
    """stdout (EMF lines are printed) and every handler of the ``clickstream`` logger into one buffer."""
    buffer = io.StringIO()
    streams = [h for h in logging.getLogger("clickstream").handlers if isinstance(h, logging.StreamHandler)]
    saved = [h.setStream(buffer) for h in streams]
    try:
        with contextlib.redirect_stdout(buffer), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="No application metrics to publish")
            yield buffer
    finally:
        for handler, stream in zip(streams, saved, strict=True):
            if stream is not None:
                handler.setStream(stream)


class LocalFunctions:
    """The template's functions in the laptop stack: resolves each one's environment and calls its handler."""

    def __init__(
        self,
        stack: Any,
        *,
        env_vars: Mapping[str, Any] | None = None,
        warehouse_url: str = "",
        template: Mapping[str, Any] | None = None,
    ) -> None:
        self.stack = stack
        self.template = template or load_template()
        self.specs = functions(self.template)
        self.env_vars = env_vars
        self.warehouse_url = warehouse_url
        self.resolve = Resolver(
            self.template,
            parameter_values(self.template, Stage=LOCAL_STAGE),
            names=local_names(stack.settings),
            pseudo={
                **PSEUDO_PARAMETERS,
                "AWS::AccountId": _stack_account(),
                "AWS::Region": _stack_region(),
            },
        )

    def spec(self, function: str) -> FunctionSpec:
        if function not in self.specs:
            known = ", ".join(sorted(self.specs))
            raise InvokeError(f"no function {function!r} in template.yaml; its functions: {known}")
        return self.specs[function]

    def environment(self, function: str) -> dict[str, str]:
        """The variables the function runs with here (see the module's docstring)."""
        spec = self.spec(function)
        env = apply_env_vars(
            function_environment(function, self.resolve, self.template), function, self.env_vars
        )
        name = str(self.resolve(spec.properties.get("FunctionName", function)))
        env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
                "AWS_LAMBDA_FUNCTION_TIMEOUT": str(spec.timeout_s),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_REGION": _stack_region(),
                "AWS_DEFAULT_REGION": _stack_region(),
                "AWS_SAM_LOCAL": "true",
            }
        )
        if self.warehouse_url and "WAREHOUSE_SECRET_ARN" in env:
            env["WAREHOUSE_URL"] = self.warehouse_url
        return env

    def call(self, function: str, event: Any) -> Invocation:
        """Run the function's handler on ``event`` with its environment; never raises for the handler's errors."""
        from clickstream.core.config import Settings
        from clickstream_local.bridge import FakeLambdaContext, load_handler
        from clickstream_local.stack import clear_caches, environment

        spec = self.spec(function)
        env = self.environment(function)
        module, _, attr = spec.handler.rpartition(".")
        if module != "app":
            raise InvokeError(f"{function}: handler {spec.handler!r} is not app.<function>")
        # Settings the template does not give are unset, so their defaults apply, as in Lambda.
        unset: dict[str, str | None] = {f.upper(): None for f in Settings().as_dict()}
        context = FakeLambdaContext(
            function_name=env["AWS_LAMBDA_FUNCTION_NAME"],
            invoked_function_arn=(
                f"arn:aws:lambda:{_stack_region()}:{_stack_account()}:function:{env['AWS_LAMBDA_FUNCTION_NAME']}"
            ),
            memory_limit_in_mb=spec.memory_mb,
            timeout_seconds=spec.timeout_s,
        )
        result = Invocation(function=function)
        with environment({**unset, **env}), captured_output() as out:
            clear_caches()
            try:
                handler = load_handler(spec.code_dir.name, spec.code_dir.parent)
                if attr != "lambda_handler":
                    raise InvokeError(f"{function}: only app.lambda_handler handlers are supported")
                result.response = json.loads(json.dumps(handler(copy.deepcopy(event), context)))
            except InvokeError:
                raise
            except Exception as exc:  # what Lambda's Python runtime answers for an unhandled exception
                result.error = {
                    "errorMessage": str(exc),
                    "errorType": type(exc).__name__,
                    "requestId": context.aws_request_id,
                    "stackTrace": traceback.format_list(traceback.extract_tb(exc.__traceback__)[1:]),
                }
            finally:
                clear_caches()
        result.logs = [line for line in out.getvalue().splitlines() if line.strip()]
        return result


def _stack_region() -> str:
    from clickstream_local.stack import REGION

    return REGION


def _stack_account() -> str:
    from clickstream_local.stack import ACCOUNT

    return ACCOUNT


# -- the sample hour -------------------------------------------------------------------------------------------
def sample_event(name: str) -> Any:
    """A sample of ``events/`` (beside the template)."""
    path = repo_root() / "events" / name
    if not path.is_file():
        raise InvokeError(f"the seeding needs {path}, which is missing")
    return json.loads(path.read_text(encoding="utf-8"))


def function_for_sample(path: Path) -> str:
    """The function a sample of ``events/`` is for (:data:`SAMPLE_FUNCTIONS`)."""
    word = path.stem.split("_", 1)[0]
    if word not in SAMPLE_FUNCTIONS:
        raise InvokeError(f"{path.name}: no function takes samples named {word}_*; name it after one")
    return SAMPLE_FUNCTIONS[word]


def sample_object_key() -> str:
    """The raw object ``events/validate_sqs.json`` notifies about: where the seed writes the sample hour."""
    from clickstream.validate.notifications import parse_notification

    sample = sample_event("validate_sqs.json")
    [ref] = parse_notification(sample["Records"][0]["body"])
    return ref.key


def sample_raw_object(stack: Any, local: LocalFunctions) -> bytes:
    """The sample hour's traffic through the real ingest handler, as Firehose writes it: one gzip object of the
    records' JSON lines (requests the API refuses write nothing, as in the stack)."""
    from clickstream.core.clock import SimulatedClock, set_clock
    from clickstream.ingest.sink import set_sink
    from clickstream_local.generator.traffic import TrafficConfig, generate

    traffic = generate(
        TrafficConfig(
            events=SAMPLE_TRAFFIC_EVENTS,
            days=(SAMPLE_ARRIVAL - SAMPLE_HOUR).total_seconds() / 86_400,
            seed=SAMPLE_TRAFFIC_SEED,
            start=SAMPLE_HOUR,
            stage=stack.settings.stage,
        )
    )
    records: list[bytes] = []

    class _Buffer:  # Firehose's buffer: the records of the hour, in order
        def put_records(self, batch: list[bytes]) -> None:
            records.extend(batch)

    clock = SimulatedClock(SAMPLE_HOUR)
    set_clock(clock)
    set_sink(_Buffer())
    try:
        for request in traffic.requests:
            if request.received_at >= SAMPLE_ARRIVAL:
                continue
            clock.set(request.received_at)
            answer = local.call("IngestFunction", request.event)
            if not answer.ok:
                raise InvokeError(f"seeding: the ingest handler failed: {answer.error}")
    finally:
        set_sink(None)
        set_clock(None)
    data = b"".join(r if r.endswith(b"\n") else r + b"\n" for r in records)
    return gzip.compress(data, mtime=0)


@dataclass
class SeedResult:
    """The seeding's steps and each one's invocations (their answers are the next step's payloads)."""

    steps: list[str] = field(default_factory=list)
    invocations: list[Invocation] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)


def seed(
    function: str, stack: Any, local: LocalFunctions, *, upto: tuple[str, ...] | None = None
) -> SeedResult:
    """Put the laptop stack where the samples of ``function`` expect it (:data:`SEED_STEPS`)."""
    from clickstream.adapters.aws import client
    from clickstream.core.clock import SimulatedClock, set_clock

    steps = SEED_STEPS.get(function, ()) if upto is None else upto
    done = SeedResult()
    clock = SimulatedClock(SAMPLE_ARRIVAL)

    def step(name: str, fn: str, event: Any) -> Any:
        answer = local.call(fn, event)
        done.invocations.append(answer)
        if not answer.ok:
            raise InvokeError(f"seeding step {name} ({fn}) failed: {answer.error}")
        return answer.response

    for name in steps:
        done.steps.append(name)
        if name == "raw":
            body = sample_raw_object(stack, local)
            put = client("s3").put_object(
                Bucket=stack.settings.raw_bucket, Key=sample_object_key(), Body=body
            )
            done.outputs["raw"] = {"size": len(body), "etag": put["ETag"].strip('"')}
            continue
        set_clock(clock)
        try:
            if name == "validate":
                clock.set(SAMPLE_ARRIVAL)
                answer = step(name, "ValidateFunction", sample_event("validate_sqs.json"))
                if answer.get("batchItemFailures"):
                    raise InvokeError(f"seeding: the sample object failed validation: {answer}")
                done.outputs["validate"] = answer
                continue
            clock.set(SAMPLE_RUN_AT)
            if name == "plan":
                done.outputs["plan"] = step(name, "PlanFunction", sample_event("plan.json"))
            elif name == "sessionize":
                plan = done.outputs["plan"]
                done.outputs["sessionize"] = [
                    step(
                        name,
                        "SessionizeFunction",
                        {"bucket": b, "run_id": plan["run_id"], "execution_id": plan["execution_id"]},
                    )
                    for b in plan["buckets"]
                ]
            elif name == "load":
                plan = done.outputs["plan"]
                done.outputs["load"] = step(
                    name,
                    "LoadFunction",
                    {
                        "execution_id": plan["execution_id"],
                        "plan": plan,
                        "buckets": done.outputs["sessionize"],
                    },
                )
            elif name == "aggregate":
                plan = done.outputs["plan"]
                done.outputs["aggregate"] = step(
                    name,
                    "AggregateFunction",
                    {"execution_id": plan["execution_id"], "plan": plan, "loaded": done.outputs["load"]},
                )
            else:  # pragma: no cover - SEED_STEPS names only the steps above
                raise InvokeError(f"unknown seeding step {name!r}")
        finally:
            set_clock(None)
    return done


# -- the command's entry point ---------------------------------------------------------------------------------
@dataclass
class InvokeResult:
    invocation: Invocation
    seeded: SeedResult


def invoke(
    function: str,
    event: Any,
    *,
    env_vars: Mapping[str, Any] | None = None,
    warehouse_url: str | None = None,
    seeded: bool = True,
    workdir: Path | None = None,
) -> InvokeResult:
    """Start the laptop stack, seed it for ``function`` (unless not ``seeded``), invoke the function on ``event``.

    The clock is the sample hour's run (:data:`SAMPLE_RUN_AT`) when seeded, the wall clock otherwise. Without
    ``warehouse_url`` the warehouse is a DuckDB file in ``workdir`` (a temporary folder when not given)."""
    import tempfile

    from clickstream.core.clock import SimulatedClock, set_clock
    from clickstream_local.stack import environment, local_settings, local_stack

    template = load_template()
    if function not in functions(template):
        known = ", ".join(sorted(functions(template)))
        raise InvokeError(f"no function {function!r} in template.yaml; its functions: {known}")
    with contextlib.ExitStack() as stack_ctx:
        if warehouse_url is None:
            folder = workdir or Path(stack_ctx.enter_context(tempfile.TemporaryDirectory(prefix="invoke-")))
            warehouse_url = f"duckdb://{folder.resolve()}/warehouse.duckdb"
        # Never a real AWS profile: moto answers every call (it supplies fake credentials).
        stack_ctx.enter_context(environment(_OFFLINE_AWS))
        stack = stack_ctx.enter_context(local_stack(local_settings(), with_cognito=False))
        local = LocalFunctions(stack, env_vars=env_vars, warehouse_url=warehouse_url, template=template)
        seed_result = seed(function, stack, local) if seeded else SeedResult()
        if seeded:
            set_clock(SimulatedClock(SAMPLE_RUN_AT))
        try:
            invocation = local.call(function, event)
        finally:
            set_clock(None)
        return InvokeResult(invocation=invocation, seeded=seed_result)


def sample_chain() -> dict[str, Any]:
    """The payloads the sample hour's run passes from step to step (what ``events/`` holds for each step)."""
    result = invoke("CommitFunction", sample_event("commit.json"))
    if not result.invocation.ok:
        raise InvokeError(f"the sample commit failed: {result.invocation.error}")
    out = result.seeded.outputs
    plan = out["plan"]
    execution = plan["execution_id"]
    return {
        "raw": out["raw"],
        "validate_answer": out["validate"],
        "plan": plan,
        "sessionize": {"run_id": plan["run_id"], "bucket": 2 if 2 in plan["buckets"] else plan["buckets"][0]},
        "load": {"execution_id": execution, "plan": plan, "buckets": out["sessionize"]},
        "aggregate": {"execution_id": execution, "plan": plan, "loaded": out["load"]},
        "commit": {"execution_id": execution, "plan": plan},
        "commit_answer": result.invocation.response,
    }
