"""An stdout callback for the suite: the play's task results and stats as one JSON document
(ansible-core has no JSON callback of its own; ansible.posix's is not installed here)."""

import json

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: results_json
type: stdout
short_description: task results and stats as JSON, for rbdvm's tests
description: Prints the task results and the stats as one JSON document at the end of the play.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "results_json"

    def __init__(self):
        super().__init__()
        self.tasks = []

    def _add(self, result, **extra):
        self.tasks.append({"task": result.task_name, "host": result._host.get_name(),
                           "result": {**result._result, **extra}})

    def v2_runner_on_ok(self, result):
        self._add(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._add(result, failed=True)

    def v2_runner_on_skipped(self, result):
        self._add(result, skipped=True)

    def v2_runner_on_unreachable(self, result):
        self._add(result, unreachable=True)

    def v2_playbook_on_stats(self, stats):
        hosts = sorted(stats.processed)
        out = {"tasks": self.tasks, "stats": {h: stats.summarize(h) for h in hosts}}
        self._display.display(json.dumps(out, default=str))
