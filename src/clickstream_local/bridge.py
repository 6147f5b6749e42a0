"""Run ``statemachine/pipeline.asl.json`` under moto with its Lambda tasks routed to Python callables.

The only module that knows moto's internals. moto (``mock_aws(config=MOTO_CONFIG)``) executes the real ASL with
its vendored interpreter, but its Docker-less Lambda backend only echoes a task's input. This bridge:

* creates the five pipeline functions in moto's Lambda and the state machine from the real ASL file, its
  ``${…}`` placeholders filled exactly as ``DefinitionSubstitutions`` would fill them;
* routes each ``Invoke`` of those functions to a Python callable (by default the real ``lambda_handler`` of
  ``functions/<name>/app.py``) with a Lambda-like context. A handler's exception becomes what Lambda's Python
  runtime answers (``FunctionError: Unhandled`` and ``{"errorType", "errorMessage", "stackTrace"}``), so the
  interpreter fails the task with ``Error`` = the exception class name and ``Cause`` = that payload, and the
  ASL's Retry/Catch behave as in AWS;
* keeps the interpreter's retry waits from sleeping for real (the intervals it asked for are recorded in
  :data:`RETRY_WAITS`, so tests can check the backoff);
* runs an execution to its end (:func:`run_pipeline`).

The back-fill branch's Distributed Map (``ItemReader`` over the items Plan writes to the lake, ``ItemProcessor`` in
``DISTRIBUTED`` mode) needs nothing of the bridge: moto's interpreter reads the items from moto's S3 itself and
runs each one through the same routed Sessionize task (checked below, and by the integration tests).

Use::

    with mock_aws(config=MOTO_CONFIG):
        stack = create_resources(settings)
        arn = create_pipeline_state_machine(stack)            # or {"load": my_callable, …} to stand in
        run = run_pipeline(arn, "hourly-2026-03-02T10", {"as_of": "2026-03-02T10:00:00Z"})
        run["status"], run["failed_step"], run["output"]

The patches are installed once per process and only touch moto: a function the bridge did not create keeps
moto's echo, and moto's reset at the end of ``mock_aws`` drops the routes.

moto internals relied on (checked by :func:`check_moto_internals`; pinned by ``pyproject.toml``'s moto range):
``moto.awslambda_simple.models.LambdaSimpleBackend.invoke(self, function_name, qualifier, body, headers,
response_headers)``, ``moto.awslambda.utils.get_backend``, ``moto.core.config.default_user_config``, and
``time.sleep`` in ``moto.stepfunctions.parser.asl.component.common.retry.retrier_decl``, and the Map state's
``ItemReader`` (``moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader``), and S3's key store
``moto.s3.utils._VersionedKeyStore`` (a dict of version lists; its ``items``/``values`` are made safe against
concurrent deletes, see :func:`_snapshot_items`).
"""

from __future__ import annotations

import importlib.util
import inspect
import io
import json
import re
import sys
import threading
import time
import traceback
import uuid
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from clickstream.adapters.aws import client
from clickstream_local.stack import LocalStack
from clickstream_local.template import asl_path, functions_dir, load_template

MOTO_VERSION_RANGE = ((5, 1), (5, 3))  # >= 5.1, < 5.3: the range pyproject.toml pins

# Function directory -> the ASL placeholder that holds its ARN.
FUNCTION_PLACEHOLDERS: dict[str, str] = {
    "plan": "PlanFunctionArn",
    "sessionize": "SessionizeFunctionArn",
    "load": "LoadFunctionArn",
    "aggregate": "AggregateFunctionArn",
    "commit": "CommitFunctionArn",
}
TOPIC_PLACEHOLDER = "FailureTopicArn"
# Used when template.yaml does not say (its Globals and each function's Properties win).
FUNCTION_TIMEOUT_SECONDS = 900
FUNCTION_MEMORY_MB = 1024

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_.:]+)\}")
_ROUTES_ATTR = "_clickstream_routes"

Handler = Callable[[dict, Any], Any]

# Every retry wait the interpreter asked for, in seconds (it does not really sleep them).
RETRY_WAITS: list[float] = []


class BridgeError(RuntimeError):
    """moto is not set up as the bridge needs, or an internal it relies on has changed."""


# -- Lambda context ------------------------------------------------------------------------------------------
@dataclass
class FakeLambdaContext:
    """The fields of Lambda's Python context object that handlers and Powertools read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int = FUNCTION_MEMORY_MB
    timeout_seconds: int = FUNCTION_TIMEOUT_SECONDS
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = f"local/[{self.function_version}]{self.aws_request_id}"
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


# -- shapes from template.yaml ------------------------------------------------------------------------------
@dataclass(frozen=True)
class FunctionShape:
    memory_mb: int = FUNCTION_MEMORY_MB
    timeout_seconds: int = FUNCTION_TIMEOUT_SECONDS


def function_shape(name: str) -> FunctionShape:
    """Memory and timeout of ``functions/<name>`` as ``template.yaml`` declares them (Globals, then its own)."""
    try:
        template = load_template()
    except FileNotFoundError:  # pragma: no cover - the template ships with the repository
        return FunctionShape()
    props: dict[str, Any] = dict(template.get("Globals", {}).get("Function", {}))
    for resource in template.get("Resources", {}).values():
        own = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function" and _code_dir(own.get("CodeUri")) == name:
            props.update(own)
            break
    return FunctionShape(
        memory_mb=int(props.get("MemorySize", FUNCTION_MEMORY_MB)),
        timeout_seconds=int(props.get("Timeout", FUNCTION_TIMEOUT_SECONDS)),
    )


def template_substitutions() -> dict[str, str]:
    """The state machine's ``DefinitionSubstitutions`` in ``template.yaml``: placeholder -> function directory
    (for ``!GetAtt <Function>.Arn``) or the logical id it refers to (topics, others)."""
    resources = load_template().get("Resources", {})
    machine = next(
        (
            r
            for r in resources.values()
            if r.get("Type") in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine")
        ),
        None,
    )
    if machine is None:
        return {}
    out: dict[str, str] = {}
    for placeholder, value in machine.get("Properties", {}).get("DefinitionSubstitutions", {}).items():
        ref: Any = (value.get("Fn::GetAtt") or value.get("Ref")) if isinstance(value, dict) else value
        logical_id = (ref if isinstance(ref, str) else ".".join(map(str, ref or []))).split(".")[0]
        target = resources.get(logical_id, {})
        code_dir = _code_dir(target.get("Properties", {}).get("CodeUri"))
        out[placeholder] = code_dir or logical_id
    return out


def _code_dir(code_uri: Any) -> str | None:
    if not isinstance(code_uri, str) or not code_uri.startswith("functions/"):
        return None
    return code_uri.strip("/").split("/")[1]


# -- moto checks ---------------------------------------------------------------------------------------------
def check_moto_internals() -> None:
    """Fail with a clear message when the installed moto lacks what the bridge relies on."""
    import moto

    version = tuple(int(p) for p in re.findall(r"\d+", moto.__version__)[:2])
    low, high = MOTO_VERSION_RANGE
    if not (low <= version < high):
        raise BridgeError(
            f"the Step Functions bridge is pinned to moto >= {low[0]}.{low[1]}, < {high[0]}.{high[1]}; "
            f"found {moto.__version__}: re-check clickstream/local/bridge.py against its source"
        )
    try:
        from moto.awslambda.utils import get_backend  # noqa: F401
        from moto.awslambda_simple.models import LambdaSimpleBackend
        from moto.core.config import default_user_config  # noqa: F401
        from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
        from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader import (  # noqa: F401
            item_reader_decl,
        )
    except ImportError as exc:
        raise BridgeError(f"moto {moto.__version__} moved a module the bridge imports: {exc}") from exc

    params = list(inspect.signature(_original_invoke(LambdaSimpleBackend)).parameters)
    expected = ["self", "function_name", "qualifier", "body", "headers", "response_headers"]
    if params != expected:
        raise BridgeError(f"moto's LambdaSimpleBackend.invoke takes {params}, the bridge expects {expected}")
    body = inspect.getsource(retrier_decl.RetrierDecl._eval_body)
    if "time.sleep(" not in body or not hasattr(retrier_decl, "time"):
        raise BridgeError(
            "moto's Step Functions retrier no longer waits with time.sleep: retries would be slow"
        )
    from moto.s3.utils import _VersionedKeyStore

    if not issubclass(_VersionedKeyStore, dict) or not callable(
        getattr(_VersionedKeyStore, "_iteritems", None)
    ):
        raise BridgeError(
            "moto's S3 key store is no longer a dict of version lists: re-check _snapshot_items"
        )


def _check_mock_config() -> None:
    from moto.core.config import default_user_config

    lam = default_user_config.get("lambda", {}).get("use_docker", True)
    sfn = default_user_config.get("stepfunctions", {}).get("execute_state_machine", False)
    if lam is not False or sfn is not True:
        raise BridgeError(
            "the pipeline bridge needs mock_aws(config=clickstream_local.stack.MOTO_CONFIG): "
            f"lambda.use_docker={lam!r}, stepfunctions.execute_state_machine={sfn!r}"
        )


# -- patches (installed once per process, harmless to anything but moto's Docker-less Lambda and retrier) -----
_install_lock = threading.Lock()


class _RetryClock:
    """Stands in for the ``time`` module inside moto's retrier: records each wait instead of sleeping it."""

    def __init__(self, real: ModuleType) -> None:
        self._real = real

    def sleep(self, seconds: float) -> None:
        RETRY_WAITS.append(float(seconds))
        self._real.sleep(0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _original_invoke(cls: Any) -> Callable[..., Any]:
    invoke = cls.invoke
    return getattr(invoke, "__wrapped_invoke__", invoke)


def _snapshot_items(self: Any) -> Any:
    """moto's ``_VersionedKeyStore.items()`` from one copy of the store, leaving out a key deleted by another thread
    while the listing runs. moto's own version re-reads each key of its copy from the live store and raises
    ``KeyError`` for one deleted meanwhile, failing the whole listing (S3 lists under concurrent deletes)."""
    for key, versions in dict.copy(self).items():
        if versions and not getattr(versions[-1], "disposed", False):
            yield key, versions[-1]


def _snapshot_values(self: Any) -> Any:
    for _key, value in _snapshot_items(self):
        yield value


def _install_patches() -> None:
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.s3.utils import _VersionedKeyStore
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    with _install_lock:
        if _VersionedKeyStore.items is not _snapshot_items:
            _VersionedKeyStore.items = _VersionedKeyStore.iteritems = _snapshot_items  # type: ignore[method-assign]
            _VersionedKeyStore.values = _VersionedKeyStore.itervalues = _snapshot_values  # type: ignore[method-assign]
        if not isinstance(retrier_decl.time, _RetryClock):
            retrier_decl.time = _RetryClock(retrier_decl.time)  # type: ignore[assignment]
        if getattr(LambdaSimpleBackend.invoke, "__wrapped_invoke__", None) is None:
            original = LambdaSimpleBackend.invoke

            def invoke(self, function_name, qualifier, body, headers, response_headers):  # type: ignore[no-untyped-def]
                routes: dict[str, _Route] | None = self.__dict__.get(_ROUTES_ATTR)
                route = routes.get(_function_name(function_name)) if routes else None
                if route is None:
                    return original(self, function_name, qualifier, body, headers, response_headers)
                return route.invoke(body, response_headers)

            invoke.__wrapped_invoke__ = original  # type: ignore[attr-defined]
            LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign]


def _function_name(name_or_arn: str) -> str:
    """``my-fn``, ``my-fn:qualifier`` or a function ARN -> ``my-fn``."""
    if name_or_arn.startswith("arn:"):
        return name_or_arn.split(":")[6]
    return name_or_arn.split(":")[0]


@dataclass
class _Route:
    function_name: str
    function_arn: str
    handler: Handler
    shape: FunctionShape = field(default_factory=FunctionShape)

    def invoke(self, body: str | bytes | None, response_headers: dict[str, str]) -> bytes:
        raw = body.decode("utf-8") if isinstance(body, bytes) else body
        event = json.loads(raw) if raw else {}
        context = FakeLambdaContext(
            function_name=self.function_name,
            invoked_function_arn=self.function_arn,
            memory_limit_in_mb=self.shape.memory_mb,
            timeout_seconds=self.shape.timeout_seconds,
        )
        try:
            result = self.handler(event, context)
        except Exception as exc:  # the Lambda runtime's answer to an unhandled exception
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(
                {
                    "errorMessage": str(exc),
                    "errorType": type(exc).__name__,
                    "requestId": context.aws_request_id,
                    "stackTrace": traceback.format_tb(
                        exc.__traceback__.tb_next if exc.__traceback__ else None
                    ),
                }
            ).encode("utf-8")
        return json.dumps(result).encode("utf-8")


# -- handlers --------------------------------------------------------------------------------------------------
def load_handler(name: str, functions: Path | None = None) -> Handler:
    """The ``lambda_handler`` of ``functions/<name>/app.py``, imported by file path (once per process)."""
    path = (functions or functions_dir()) / name / "app.py"
    if not path.is_file():
        raise BridgeError(f"no handler for the {name!r} step: {path} does not exist")
    module_name = f"clickstream_functions.{name}.app"
    module = sys.modules.get(module_name)
    if module is None or Path(getattr(module, "__file__", "")) != path:
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:  # pragma: no cover - only for unreadable files
            raise BridgeError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(module_name, None)
            raise
    handler = getattr(module, "lambda_handler", None)
    if not callable(handler):
        raise BridgeError(f"{path} has no lambda_handler")
    return handler


# -- state machine ---------------------------------------------------------------------------------------------
def substitute(definition: str, substitutions: Mapping[str, str]) -> str:
    """Fill ``${Name}`` placeholders as CloudFormation's ``DefinitionSubstitutions`` does; every one must be given."""
    missing = sorted({m.group(1) for m in _PLACEHOLDER.finditer(definition)} - set(substitutions))
    if missing:
        raise BridgeError(f"the state machine definition needs substitutions for {missing}")
    return _PLACEHOLDER.sub(lambda m: substitutions[m.group(1)], definition)


def placeholders(definition: str) -> set[str]:
    """The ``${Name}`` placeholders a definition uses."""
    return {m.group(1) for m in _PLACEHOLDER.finditer(definition)}


def create_pipeline_state_machine(
    stack: LocalStack,
    functions: Mapping[str, Handler] | None = None,
    *,
    asl: Path | None = None,
) -> str:
    """Create the pipeline's functions and state machine in moto; returns the state machine's ARN.

    ``functions`` maps a step's function directory (plan, sessionize, load, aggregate, commit) to the callable
    that serves it; the others are the real handlers. Call inside ``mock_aws(config=MOTO_CONFIG)``.
    """
    check_moto_internals()
    _check_mock_config()
    unknown = set(functions or {}) - set(FUNCTION_PLACEHOLDERS)
    if unknown:
        raise BridgeError(
            f"unknown pipeline functions {sorted(unknown)}; known: {sorted(FUNCTION_PLACEHOLDERS)}"
        )
    handlers = {name: (functions or {}).get(name) or load_handler(name) for name in FUNCTION_PLACEHOLDERS}
    _install_patches()

    prefix = f"clickstream-{stack.settings.stage}"
    role_arn = _ensure_role(f"{prefix}-pipeline")
    lam = client("lambda")
    routes: dict[str, _Route] = {}
    substitutions = {TOPIC_PLACEHOLDER: stack.topic_arn}
    for name, placeholder in FUNCTION_PLACEHOLDERS.items():
        fn_name = f"{prefix}-{name}"
        shape = function_shape(name)
        arn = _ensure_function(lam, fn_name, role_arn, stack, shape)
        routes[fn_name] = _Route(function_name=fn_name, function_arn=arn, handler=handlers[name], shape=shape)
        substitutions[placeholder] = arn

    region, account = arn.split(":")[3], arn.split(":")[4]
    from moto.awslambda.utils import get_backend

    backend = get_backend(account, region)
    backend.__dict__.setdefault(_ROUTES_ATTR, {}).update(routes)

    definition = substitute((asl or asl_path()).read_text(encoding="utf-8"), substitutions)
    sfn = client("stepfunctions")
    sm_name = f"{prefix}-pipeline"
    existing = [
        m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"] if m["name"] == sm_name
    ]
    if existing:
        sfn.update_state_machine(stateMachineArn=existing[0], definition=definition, roleArn=role_arn)
        sm_arn = existing[0]
    else:
        sm_arn = sfn.create_state_machine(name=sm_name, definition=definition, roleArn=role_arn)[
            "stateMachineArn"
        ]
    stack.extra["state_machine_arn"] = sm_arn
    return sm_arn


def _ensure_role(name: str) -> str:
    iam = client("iam")
    try:
        return iam.get_role(RoleName=name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


def _ensure_function(lam: Any, name: str, role_arn: str, stack: LocalStack, shape: FunctionShape) -> str:
    try:
        return lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    except lam.exceptions.ResourceNotFoundException:
        pass
    return lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role_arn,
        Handler="app.lambda_handler",
        Code={"ZipFile": _placeholder_zip()},
        Timeout=shape.timeout_seconds,
        MemorySize=shape.memory_mb,
        Environment={"Variables": stack.env},
    )["FunctionArn"]


def _placeholder_zip() -> bytes:
    """A deployment package for moto's records; the code that runs is the routed Python callable."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", "def lambda_handler(event, context):\n    return event\n")
    return buf.getvalue()


# -- executions ------------------------------------------------------------------------------------------------
_TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
_FAILURE_EVENTS = {"TaskFailed", "LambdaFunctionFailed", "TaskTimedOut", "LambdaFunctionTimedOut"}


def run_pipeline(
    sfn_arn: str,
    name: str,
    input: Mapping[str, Any] | None = None,
    *,
    timeout_seconds: float = 600.0,
    poll_seconds: float = 0.005,
) -> dict[str, Any]:
    """Start an execution named ``name``, wait until it ends, and describe how it went.

    Returns ``status``, ``output`` (parsed JSON, or None), ``execution_arn``, ``error``/``cause`` of the
    execution, ``failed_step`` (the first state whose task failed, or None), ``failures`` (every task failure:
    state, error, cause, in order) and ``states`` (the states entered, in order).
    """
    sfn = client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=sfn_arn, name=name, input=json.dumps(dict(input or {})))[
        "executionArn"
    ]
    deadline = time.monotonic() + timeout_seconds
    while True:
        desc = sfn.describe_execution(executionArn=arn)
        if desc["status"] in _TERMINAL:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"execution {name} still {desc['status']} after {timeout_seconds}s")
        time.sleep(poll_seconds)
    history = _history(sfn, arn)
    states, failures = _walk_history(history)
    return {
        "execution_arn": arn,
        "status": desc["status"],
        "output": json.loads(desc["output"]) if desc.get("output") else None,
        "error": desc.get("error"),
        "cause": desc.get("cause"),
        "failed_step": failures[0]["state"] if failures else None,
        "failures": failures,
        "states": states,
    }


def _history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events.extend(page["events"])
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


def _walk_history(events: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    by_id = {e["id"]: e for e in events}
    states: list[str] = []
    failures: list[dict[str, Any]] = []
    for event in events:
        if event["type"].endswith("StateEntered"):
            states.append(event["stateEnteredEventDetails"]["name"])
        elif event["type"] in _FAILURE_EVENTS:
            details: dict[str, Any] = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
            failures.append(
                {
                    "state": _state_of(event, by_id),
                    "error": details.get("error"),
                    "cause": details.get("cause"),
                }
            )
    return states, failures


def _state_of(event: dict[str, Any], by_id: dict[int, dict[str, Any]]) -> str | None:
    """The state an event belongs to: follow ``previousEventId`` back to the nearest ``*StateEntered``."""
    seen = 0
    current: dict[str, Any] | None = event
    while current is not None and seen < len(by_id):
        if current["type"].endswith("StateEntered"):
            return current["stateEnteredEventDetails"]["name"]
        current = by_id.get(current.get("previousEventId", 0))
        seen += 1
    return None
