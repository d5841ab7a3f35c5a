/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* metrics: the agent's /metrics: what its passes did, its link, its peers' handshakes. */

#include "metrics.h"

#include <errno.h>
#include <time.h>

#include "macro.h"

static const double pass_bounds[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
                                     0.25,  0.5,   1,    2.5,   5,    10};

/*
 * Handshake ages, each bucket up to its bound (ms). WireGuard renews a session's keys
 * every 2 minutes while traffic flows and drops one after 3 without a handshake, so a
 * peer under 3 minutes is connected.
 */
static const struct {
	const char *age;
	int64_t max_ms;
} age_buckets[] = {
        {"under_3m", 3 * 60 * 1000},
        {"under_1h", 60 * 60 * 1000},
        {"under_1d", 24 * 60 * 60 * 1000},
        {"over_1d", INT64_MAX},
};

void agent_metrics_init(struct agent_metrics *m)
{
	*m = (struct agent_metrics){0};
	wgf_prom_histogram_init(&m->pass_seconds, pass_bounds, WGF_ARRAY_SIZE(pass_bounds));
}

void agent_metrics_ensure(struct agent_metrics *m, int r)
{
	if (r < 0)
		m->backend_errors++;
}

void agent_metrics_pass(struct agent_metrics *m, int run_r, const struct reconcile_result *res,
                        uint64_t ms)
{
	wgf_prom_histogram_observe(&m->pass_seconds, (double)ms / 1000.0);
	if (run_r < 0 || (res->apply_error < 0 && res->apply_error != -ECANCELED)) {
		m->passes_failed++;
		m->backend_errors++;
	} else {
		m->passes_ok++;
	}
	if (run_r < 0)
		return;
	m->has_pass = true;
	m->desired = res->n_desired;
	m->refused = res->n_failed;
	if (res->has_unknown)
		m->unknown = res->n_unknown_total;
	m->drift += res->n_drift;
	if (res->apply_error == 0) {
		m->added += res->n_added;
		m->updated += res->n_updated;
		m->removed += res->n_removed;
	}
	if (res->apply_error == 0 && res->n_pending == 0) {
		m->applied_revision = res->revision;
		m->applied_at = (double)time(NULL);
	}
}

static void write_passes(const struct agent_metrics *m, FILE *f)
{
	wgf_prom_family(f, "wgfleet_agent_passes_total", "counter",
	                "Reconcile passes, by result (failed: the interface could not be read "
	                "or changed).");
	wgf_prom(f, "wgfleet_agent_passes_total", m->passes_ok, {"result", "ok"});
	wgf_prom(f, "wgfleet_agent_passes_total", m->passes_failed, {"result", "failed"});
	wgf_prom_family(f, "wgfleet_agent_pass_duration_seconds", "histogram",
	                "Time a reconcile pass took: read, diff, apply.");
	wgf_prom_histogram_write(f, "wgfleet_agent_pass_duration_seconds", NULL, 0,
	                         &m->pass_seconds);
	wgf_prom_family(f, "wgfleet_agent_peer_changes_total", "counter",
	                "Peer changes applied to the interface, by kind.");
	wgf_prom(f, "wgfleet_agent_peer_changes_total", m->added, {"kind", "add"});
	wgf_prom(f, "wgfleet_agent_peer_changes_total", m->updated, {"kind", "update"});
	wgf_prom(f, "wgfleet_agent_peer_changes_total", m->removed, {"kind", "remove"});
	wgf_prom_single(f, "wgfleet_agent_drift_repairs_total", "counter",
	                "Peers the interface had changed behind the agent's back, put right.",
	                m->drift);
	wgf_prom_single(f, "wgfleet_agent_backend_errors_total", "counter",
	                "Failures to set up, read or change the interface.", m->backend_errors);
	if (!m->has_pass)
		return;
	wgf_prom_single(f, "wgfleet_agent_peers_desired", "gauge",
	                "Peers the desired set holds, at the last pass.", m->desired);
	wgf_prom_single(f, "wgfleet_agent_peers_refused", "gauge",
	                "Desired peers the last pass refused (an allowed IP another peer holds, or "
	                "outside [wireguard] routable).",
	                m->refused);
	wgf_prom_single(f, "wgfleet_agent_peers_unknown", "gauge",
	                "Peers adopt mode keeps on the interface without managing them (neither "
	                "desired, static nor applied by the agent), at the last full pass.",
	                m->unknown);
	wgf_prom_single(f, "wgfleet_agent_applied_revision", "gauge",
	                "The newest revision of the desired set applied completely.",
	                m->applied_revision);
	wgf_prom_family(f, "wgfleet_agent_last_applied_timestamp_seconds", "gauge",
	                "When a pass last left nothing pending (Unix time).");
	if (m->applied_at > 0)
		wgf_prom(f, "wgfleet_agent_last_applied_timestamp_seconds", m->applied_at);
}

static void write_session(struct session *sess, FILE *f)
{
	struct session_stats st;

	if (!sess)
		return;
	session_get_stats(sess, &st);
	wgf_prom_single(f, "wgfleet_agent_coordinator_connected", "gauge",
	                "1 while a connection to a coordinator is up, else 0.", st.links_up > 0);
	wgf_prom_single(f, "wgfleet_agent_coordinator_links_up", "gauge",
	                "Coordinator URLs with a connection up now.", st.links_up);
	wgf_prom_single(f, "wgfleet_agent_coordinator_refusals_total", "counter",
	                "Requests the coordinator answered with an Error.", st.refused);
	wgf_prom_family(f, "wgfleet_agent_last_sync_timestamp_seconds", "gauge",
	                "When the agent last completed a sync of its desired set with a "
	                "coordinator (Unix time).");
	if (st.synced_at_ms)
		wgf_prom(f, "wgfleet_agent_last_sync_timestamp_seconds",
		         (double)st.synced_at_ms / 1000.0);
}

static void write_handshakes(const struct monitor *mon, int64_t now_ms, FILE *f)
{
	size_t n[WGF_ARRAY_SIZE(age_buckets)] = {0}, never = 0;

	if (!mon->has_read)
		return;
	for (size_t i = 0; i < mon->n_facts; i++) {
		int64_t age = now_ms - mon->facts[i].last_handshake_ms;
		size_t b = 0;

		if (mon->facts[i].last_handshake_ms == 0) {
			never++;
			continue;
		}
		while (b + 1 < WGF_ARRAY_SIZE(age_buckets) && age > age_buckets[b].max_ms)
			b++;
		n[b]++;
	}
	wgf_prom_single(f, "wgfleet_agent_peers_actual", "gauge",
	                "Peers the interface held at the monitor's last read.", mon->n_facts);
	wgf_prom_family(f, "wgfleet_agent_peers_by_handshake_age", "gauge",
	                "Peers of the interface by the age of their latest handshake, at the "
	                "monitor's last read (never: no handshake yet).");
	for (size_t b = 0; b < WGF_ARRAY_SIZE(age_buckets); b++)
		wgf_prom(f, "wgfleet_agent_peers_by_handshake_age", n[b],
		         {"age", age_buckets[b].age});
	wgf_prom(f, "wgfleet_agent_peers_by_handshake_age", never, {"age", "never"});
}

void agent_metrics_write(const struct agent_metrics *m, struct session *sess,
                         const struct monitor *mon, int64_t now_ms, FILE *f)
{
	wgf_prom_family(f, "wgfleet_build_info", "gauge",
	                "Always 1; the labels say which daemon and version this is.");
	wgf_prom(f, "wgfleet_build_info", 1, {"daemon", "agent"}, {"version", WGF_VERSION});
	write_passes(m, f);
	write_session(sess, f);
	write_handshakes(mon, now_ms, f);
}
