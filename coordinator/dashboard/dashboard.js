// SPDX-License-Identifier: MIT
// Copyright (c) 2026 The wgfleet authors
//
// The fleet at a glance, from the coordinator's admin API. The admin key is kept in
// this tab's session storage and sent only as a bearer header; every value is written
// with textContent, never as markup. Everything it reads is bounded: the status, a page
// of routers per status that needs attention, and the audit log followed by id.
"use strict";

const KEY = "wgfleet.admin_key";
const REFRESH_MS = 5000;
const ATTENTION_PAGE = 50;
const AUDIT_SHOWN = 50;

let auditAfter = null; // the last audit id shown; later polls ask only for newer ones
let auditSince = null; // until one is: the hour before the dashboard opened
let auditRows = [];
let timer = null;

const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
	const e = document.createElement(tag);
	if (text !== undefined && text !== null)
		e.textContent = String(text);
	if (cls)
		e.className = cls;
	return e;
}

function ago(ts) {
	if (!ts)
		return "never";
	const s = Math.round((Date.now() - Date.parse(ts)) / 1000);
	if (s < 2)
		return "now";
	if (s < 120)
		return s + "s ago";
	if (s < 7200)
		return Math.round(s / 60) + "m ago";
	if (s < 172800)
		return Math.round(s / 3600) + "h ago";
	return Math.round(s / 86400) + "d ago";
}

class ApiError extends Error {
	constructor(status, body) {
		super(body && body.error ? body.error.message : "HTTP " + status);
		this.status = status;
	}
}

async function api(path) {
	const r = await fetch(path, {
		headers: {Authorization: "Bearer " + sessionStorage.getItem(KEY)},
		cache: "no-store",
		credentials: "omit",
	});
	const body = r.headers.get("content-type") === "application/json" ? await r.json() : null;
	if (!r.ok)
		throw new ApiError(r.status, body);
	return body;
}

function fill(tbody, rows) {
	tbody.replaceChildren(...rows);
}

function poolCell(pool) {
	const td = el("td");
	const used = pool ? pool.used : 0, size = pool ? pool.size : 0;
	const share = size ? used / size : 0;
	const bar = el("span", null, "bar" + (share >= 0.9 ? " full" : share >= 0.8 ? " high" : ""));
	const fillSpan = el("span");
	fillSpan.style.width = Math.min(100, share * 100).toFixed(1) + "%";
	bar.append(fillSpan);
	td.append(bar, el("span", used + " / " + size));
	td.dataset.used = used;
	td.dataset.size = size;
	return td;
}

function showStatus(st) {
	const counts = Object.entries(st.routers).sort();
	fill($("counts"), counts.map(([status, n]) => {
		const li = el("li");
		li.dataset.status = status;
		li.append(el("span", status, "state-" + status), el("span", " " + n));
		return li;
	}));
	$("server-count").textContent = "(" + st.servers.length + ")";
	fill($("servers").tBodies[0], st.servers.map((s) => {
		const tr = el("tr");
		tr.dataset.server = s.name;
		const lat = s.apply_latency || {};
		tr.append(el("td", s.name),
			el("td", s.online ? "online" : "offline", s.online ? "state-online" : "state-offline"),
			el("td", ago(s.last_seen_at)), el("td", s.revision_lag), el("td", s.peers),
			el("td", s.connected), poolCell(s.pool),
			el("td", lat.p50_ms == null ? "-" : lat.p50_ms + " / " + lat.p99_ms + " ms"));
		return tr;
	}));
}

function routerRow(r) {
	const tr = el("tr");
	tr.dataset.router = r.id;
	tr.append(el("td", r.vpn_status, "state-" + r.vpn_status), el("td", r.name || r.id),
		el("td", r.server), el("td", r.vpn_ip), el("td", r.status_reason || "", "reason"),
		el("td", ago(r.last_handshake_at)));
	return tr;
}

async function showAttention() {
	const pages = await Promise.all(["failed", "disconnected"].map(
		(s) => api("/v1/routers?status=" + s + "&limit=" + ATTENTION_PAGE)));
	fill($("attention").tBodies[0], pages.flatMap((p) => p.items.map(routerRow)));
	const more = pages.some((p) => p.next_cursor);
	$("attention-more").textContent = more
		? "More than " + ATTENTION_PAGE + " of a status: wgfleetctl routers list --status ... lists them all."
		: "";
}

async function showAudit() {
	const path = auditAfter === null
		? "/v1/audit?limit=1000&since=" + encodeURIComponent(auditSince)
		: "/v1/audit?limit=1000&after=" + auditAfter;
	const page = await api(path);
	if (page.items.length)
		auditAfter = page.items[page.items.length - 1].id;
	auditRows = auditRows.concat(page.items).slice(-AUDIT_SHOWN);
	fill($("audit").tBodies[0], auditRows.slice().reverse().map((a) => {
		const tr = el("tr");
		tr.dataset.audit = a.id;
		tr.append(el("td", ago(a.at)), el("td", a.tenant || ""), el("td", a.action),
			el("td", a.vpn_ip || ""), el("td", a.router_id || ""));
		return tr;
	}));
}

async function refresh() {
	try {
		const [st] = await Promise.all([api("/v1/status"), showAttention(), showAudit()]);
		showStatus(st);
		$("error").textContent = "";
		$("updated").textContent = "updated " + new Date().toLocaleTimeString();
		$("board").dataset.refreshed = String(Date.now());
	} catch (e) {
		if (e instanceof ApiError && (e.status === 401 || e.status === 403))
			return logout("That key is not an admin key the coordinator knows.");
		$("error").textContent = "Cannot reach the API: " + e.message;
	}
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

async function search(ev) {
	ev.preventDefault();
	const q = $("search").value.trim(), out = $("found");
	out.replaceChildren();
	try {
		let routers;
		if (UUID.test(q))
			routers = [await api("/v1/routers/" + encodeURIComponent(q))];
		else
			routers = (await api("/v1/routers?limit=10&address=" + encodeURIComponent(q))).items;
		if (!routers.length) {
			out.append(el("p", "No live router has that id or address.", "muted"));
			return;
		}
		for (const r of routers) {
			const table = el("table");
			table.append(routerRow(r));
			const history = await api("/v1/audit?limit=200&router=" + encodeURIComponent(r.id));
			const list = el("ol");
			list.className = "history";
			for (const a of history.items)
				list.append(el("li", a.at + "  " + a.action + (a.detail && a.detail.reason
					? "  " + a.detail.reason : "")));
			out.append(table, el("h3", "History of " + (r.name || r.id)), list);
		}
	} catch (e) {
		out.append(el("p", e.status === 404 ? "No router has that id." : e.message, "error"));
	}
}

function logout(why) {
	sessionStorage.removeItem(KEY);
	clearInterval(timer);
	timer = null;
	$("board").hidden = true;
	$("forget").hidden = true;
	$("login").hidden = false;
	$("login-error").textContent = why || "";
}

function login() {
	$("login").hidden = true;
	$("board").hidden = false;
	$("forget").hidden = false;
	auditAfter = null;
	auditSince = new Date(Date.now() - 3600 * 1000).toISOString();
	auditRows = [];
	refresh();
	timer = setInterval(refresh, REFRESH_MS);
}

document.addEventListener("DOMContentLoaded", () => {
	$("login-form").addEventListener("submit", (ev) => {
		ev.preventDefault();
		sessionStorage.setItem(KEY, $("key").value.trim());
		$("key").value = "";
		login();
	});
	$("forget").addEventListener("click", () => logout());
	$("search-form").addEventListener("submit", search);
	if (sessionStorage.getItem(KEY))
		login();
	else
		logout();
});
