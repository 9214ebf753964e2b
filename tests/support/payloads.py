"""One webhook body per provider, as each tool sends it (docs/keep-compatibility.md#providers)."""

from __future__ import annotations

ALERTMANAGER = {
    "version": "4", "groupKey": '{}:{alertname="DiskAlmostFull"}', "truncatedAlerts": 0,
    "status": "firing", "receiver": "farm", "groupLabels": {"alertname": "DiskAlmostFull"},
    "commonLabels": {"alertname": "DiskAlmostFull", "severity": "warning"},
    "commonAnnotations": {}, "externalURL": "http://am.example.internal:9093",
    "alerts": [{
        "status": "firing",
        "labels": {"alertname": "DiskAlmostFull", "instance": "db-07:9100", "job": "node",
                   "severity": "warning", "environment": "staging", "service": "postgres"},
        "annotations": {"summary": "Disk on db-07 above 90%",
                        "description": "Filesystem /var/lib/pgsql on db-07 is 93% full"},
        "startsAt": "2025-03-04T08:15:30.123Z", "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prom.example.internal:9090/graph?g0.expr=node_fs_used",
        "fingerprint": "a1b2c3d4e5f60718"}],
}
GRAFANA = {
    "receiver": "farm", "status": "firing", "orgId": 1,
    "alerts": [{
        "status": "firing",
        "labels": {"alertname": "HighLatency", "service": "checkout", "severity": "critical"},
        "annotations": {"summary": "p99 above 2s"},
        "startsAt": "2025-03-04T08:15:00Z", "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "alerting/grafana/abc123/view", "fingerprint": "7f3e2a9b1c0d4e5f",
        "values": {"A": 2.7, "C": 1}, "valueString": "[ var='A' value=2.7 ]"}],
    "groupLabels": {"alertname": "HighLatency"}, "externalURL": "https://grafana.example.org/",
    "version": "1", "title": "[FIRING:1] HighLatency API (checkout)", "state": "alerting",
}
DATADOG = {
    "body": "%%%\n@slack-ops CPU usage above 90% on web-03\n%%%", "last_updated": "1741076130000",
    "event_type": "query_alert_monitor", "title": "[Triggered on {host:web-03}] High CPU",
    "severity": "P2", "alert_type": "error", "alert_transition": "Triggered",
    "scopes": "host:web-03", "org": {"id": "123", "name": "Example"},
    "url": "https://app.datadoghq.com/monitors/4567",
    "tags": "env:prod,monitor,role:web,service:storefront", "id": "7391827364512",
    "monitor_id": "4567",
}
ZABBIX = {
    "id": "48213", "triggerId": "23011", "lastReceived": "2025.03.04 08:15:30",
    "message": "Problem started at 08:15:30", "name": "High CPU utilization on app-12",
    "service": "app-12", "severity": "Disaster", "status": "PROBLEM",
    "tags": '[{"tag":"environment","value":"production"}]', "description": "CPU above 90%",
    "time": "08:15:30", "value": "1", "host_ip": "10.1.2.12", "host_name": "app-12",
    "url": "https://zabbix.example.org", "update_action": "", "event_ack": "No",
}
KEEP_ALERTS = [
    {"id": "payments-db-pool-01", "name": "Payments DB connection pool exhausted",
     "status": "firing", "severity": "critical", "service": "payments",
     "labels": {"cluster": "eu-1"}, "fingerprint": "payments-db-pool"},
    {"name": "Queue lag", "severity": "warning", "team": "payments-oncall"},
]
