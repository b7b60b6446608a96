"""/metrics parses as Prometheus text and moves when labels are submitted."""

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import auth


def scrape(client, **headers):
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200
    return {s.name + str(sorted(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.data.decode()) for s in family.samples}


def value(samples, prefix, **labels):
    key = prefix + str(sorted(labels.items()))
    return samples.get(key, 0.0)


def test_metrics_move_when_labels_are_submitted(client, make_user, make_project):
    project_id = make_project(n=5)
    _, token = make_user("ann")
    before = scrape(client)
    for _ in range(3):
        lease = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token)).json
        client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(token),
                    json={"example_id": lease["example"]["id"], "label": "pos"})
    after = scrape(client)
    assert value(after, "hitl_labels_total", project=str(project_id)) - value(before, "hitl_labels_total", project=str(project_id)) == 3
    assert value(after, "hitl_queue_depth", project=str(project_id)) == 2
    requests = [k for k in after if k.startswith("hitl_http_requests_total") and "api.submit" in k]
    assert requests and sum(after[k] for k in requests) - sum(before.get(k, 0) for k in requests) == 3
    assert value(after, "hitl_http_request_duration_seconds_count", endpoint="api.submit") >= 3
    assert any(k.startswith("hitl_retrain_runs_total") for k in after)


def test_metrics_token_when_configured(app_factory):
    app = app_factory(METRICS_TOKEN="scrape-me")
    client = app.test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-me"}).status_code == 200


def test_request_log_lines_carry_no_tokens(client, make_user, caplog):
    _, token = make_user("ann")
    with caplog.at_level("INFO", logger="hitl.request"):
        client.get("/api/v1/projects?secret=shh", headers=auth(token))
    lines = [r.getMessage() for r in caplog.records if r.name == "hitl.request"]
    assert lines and '"status": 200' in lines[-1] and '"route": "/api/v1/projects"' in lines[-1]
    assert token not in "".join(lines) and "shh" not in "".join(lines)
