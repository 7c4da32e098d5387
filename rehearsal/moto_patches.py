"""Patches that make moto's Step Functions engine run on the simulated clock and call real handlers.

moto (5.2.x) executes ASL itself; it sleeps in real time for `Wait` states, `Retry` intervals and
task timeouts, and its docker-less Lambda only echoes. These patches change nothing in the ASL
files: they swap those sleeps for the simulated clock and route Lambda invocations to
`invoke(function_name, payload) -> (payload_bytes, function_error | None)`.
"""

from __future__ import annotations

import contextlib
import copy
import types
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

from rehearsal.clock import SimClock

Invoker = Callable[[str, bytes], tuple[bytes, str | None]]


@contextlib.contextmanager
def patched_moto(clock: SimClock, invoker: Invoker) -> Iterator[None]:
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    def worker_start(self: Any) -> None:
        # Counted before the thread exists, so the clock cannot move between here and its first step.
        import threading

        clock.enter()
        threading.Thread(target=clock.participant(self._execution_logic), daemon=True).start()

    def wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
        if wait_seconds > 0:
            clock.sleep(wait_seconds)

    def evaluate_inline(self: Any, env: Any) -> None:
        # moto runs each task in a helper thread and waits on it with the task's timeout in real
        # time. Handlers run in-process and take no simulated time, so the task runs inline; the
        # only timeout that matters (a callback's) is enforced by `callback_wait` below.
        self.timeout.eval(env=env)
        env.stack.pop()
        frame = env.open_frame()
        frame.states.reset(input_value=env.states.get_input())
        frame.stack = copy.deepcopy(env.stack)
        try:
            self._eval_execution(frame)
        finally:
            frame.set_ended()
            env.close_frame(frame)
        output = frame.stack.pop()
        env.stack.append(output)
        if not self._is_language_query_jsonpath():
            env.states.set_result(output)
        if self.assign_decl:
            self.assign_decl.eval(env=env)
        if self.result_selector:
            self.result_selector.eval(env=env)
        if self.result_path:
            self.result_path.eval(env)
        else:
            env.states.reset(input_value=env.stack.pop())

    original_notify = CallbackEndpoint.notify

    def callback_wait(self: Any, timeout: float | None = None) -> Any:
        clock.wait_signal(self, timeout)
        return self._outcome

    def callback_notify(self: Any, outcome: Any) -> None:
        original_notify(self, outcome)
        clock.signal(self)

    def lambda_invoke(
        self: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any
    ) -> bytes:
        payload = body if isinstance(body, bytes) else (body or "{}").encode()
        name = function_name.split(":function:")[-1].split(":")[0]
        result, function_error = invoker(name, payload)
        if function_error:
            response_headers["x-amz-function-error"] = function_error
        return result

    from moto.core.responses import EmptyResult
    from moto.stepfunctions.responses import StepFunctionResponse

    def send_task_failure(self: Any) -> Any:
        # moto 5.2.5 drops `cause`; Step Functions hands it to the Catch as `Cause`.
        self.stepfunction_backend.send_task_failure(
            self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
        )
        return EmptyResult()

    retry_time = types.SimpleNamespace(sleep=clock.sleep)
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(ExecutionWorker, "start", worker_start))
        stack.enter_context(mock.patch.object(WaitFunction, "_wait_interval", wait_interval))
        stack.enter_context(mock.patch.object(ExecutionState, "_evaluate_with_timeout", evaluate_inline))
        stack.enter_context(mock.patch.object(CallbackEndpoint, "wait", callback_wait))
        stack.enter_context(mock.patch.object(CallbackEndpoint, "notify", callback_notify))
        stack.enter_context(mock.patch.object(retrier_decl, "time", retry_time))
        stack.enter_context(mock.patch.object(LambdaSimpleBackend, "invoke", lambda_invoke))
        stack.enter_context(mock.patch.object(StepFunctionResponse, "send_task_failure", send_task_failure))
        yield
