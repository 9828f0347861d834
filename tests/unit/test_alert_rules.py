"""The alerting rules and the dashboard rbdvm ships (helpers/core/monitoring), checked by
Prometheus' own promtool: the rule file loads, and each alert fires on the series that
should fire it and on no other (`promtool test rules`, evaluated offline)."""

import json
import subprocess

import pytest

from rbdvm.helpers.core import monitoring, promtext
from rbdvm.helpers.ops import metrics

pytestmark = [pytest.mark.unit, pytest.mark.requires("promtool")]

# input series (1 m apart) and the alerts expected at a moment, in promtool's test format
TESTS = """
rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'rbdvm_vm_wanted_running{vm="a"}'
        values: '1x10'
      - series: 'rbdvm_vm_running{vm="a"}'
        values: '1 1 0 0 0 0 0 0 0 0 0'
      - series: 'rbdvm_vm_wanted_running{vm="b"}'
        values: '0x10'
      - series: 'rbdvm_vm_running{vm="b"}'
        values: '0x10'
      - series: 'rbdvm_node_online{node="n1"}'
        values: '1x10'
      - series: 'rbdvm_node_online{node="n2"}'
        values: '1x10'
      - series: 'rbdvm_node_selfcheck_last_seen_timestamp_seconds{node="n1"}'
        values: '0+60x10'
      - series: 'rbdvm_node_selfcheck_last_seen_timestamp_seconds{node="n2"}'
        values: '0+60x3 180x7'
      - series: 'rbdvm_node_fenced{node="n1"}'
        values: '0 0 0 1 1 1 1 1 1 1 1'
      - series: 'rbdvm_vm_trusted{vm="a"}'
        values: '1 1 1 1 0 0 0 0 0 0 0'
      - series: 'rbdvm_vm_last_successful_backup_timestamp_seconds{vm="a"}'
        values: '-94000x10'
      - series: 'rbdvm_vm_last_successful_backup_timestamp_seconds{vm="b"}'
        values: '0x10'
      - series: 'rbdvm_vm_last_backup_success{vm="b"}'
        values: '1x10'
      - series: 'rbdvm_vm_last_failover_duration_seconds{vm="a"}'
        values: '45x10'
      - series: 'rbdvm_vm_last_failover_timestamp_seconds{vm="a"}'
        values: '0x10'
    alert_rule_test:
      - eval_time: 5m
        alertname: RbdvmVmNotRunning
        exp_alerts:
          - exp_labels: {severity: critical, vm: a}
            exp_annotations: {summary: "VM a should run but does not"}
      - eval_time: 1m
        alertname: RbdvmVmNotRunning
        exp_alerts: []
      - eval_time: 6m
        alertname: RbdvmSelfCheckNotRunning
        exp_alerts:
          - exp_labels: {severity: critical, node: n2}
            exp_annotations:
              summary: "The fence self-check of node n2 has not looked for 30 s: a storage fence would not end \\
                its QEMUs"
      - eval_time: 4m
        alertname: RbdvmNodeFenced
        exp_alerts:
          - exp_labels: {severity: critical, node: n1}
            exp_annotations: {summary: "Node n1 is fenced off Ceph (on the OSD blocklist)"}
      - eval_time: 5m
        alertname: RbdvmVmUntrusted
        exp_alerts:
          - exp_labels: {severity: warning, vm: a}
            exp_annotations: {summary: "VM a is not signed by this cluster: it will not start (rbdvm trust)"}
      - eval_time: 5m
        alertname: RbdvmBackupTooOld
        exp_alerts:
          - exp_labels: {severity: warning, vm: a}
            exp_annotations: {summary: "VM a has no successful backup in the time its policy allows"}
      - eval_time: 5m
        alertname: RbdvmFailoverSlow
        exp_alerts:
          - exp_labels: {severity: warning, vm: a}
            exp_annotations: {summary: "The last failover of VM a took 45s"}
"""


def test_the_rule_file_loads_and_each_alert_fires_on_what_it_means(tmp_path):
    (tmp_path / "rules.yml").write_text(monitoring.rules_yaml())
    check = subprocess.run(["promtool", "check", "rules", str(tmp_path / "rules.yml")], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    (tmp_path / "tests.yml").write_text(TESTS)
    run = subprocess.run(["promtool", "test", "rules", "tests.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_metric_a_rule_or_panel_names_is_one_the_exporter_serves():
    import re

    exprs = [r.expr for r in monitoring.RULES] + [p.expr for p in monitoring.PANELS]
    named = {m for e in exprs for m in re.findall(r"\brbdvm_[a-z_]+", e)}
    assert named <= set(metrics.METRICS), named - set(metrics.METRICS)


def test_the_dashboard_is_grafana_json_with_one_query_per_panel():
    board = json.loads(monitoring.dashboard_json())
    assert [p["title"] for p in board["panels"]] == [p.title for p in monitoring.PANELS]
    assert all(len(p["targets"]) == 1 for p in board["panels"])


def test_the_exposition_passes_promtools_check_and_escapes_label_values():
    fam = promtext.Family("rbdvm_vm_running", "gauge", "1 if running.")
    fam.add(1, vm='a"b\\c\nd')
    text = promtext.render([fam])
    assert 'vm="a\\"b\\\\c\\nd"' in text
    check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert check.returncode == 0 and not check.stderr.strip(), check.stderr
    with pytest.raises(ValueError):
        promtext.Family("rbdvm_failovers", "counter", "a counter's name ends in _total")
