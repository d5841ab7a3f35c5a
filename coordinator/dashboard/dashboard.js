// SPDX-License-Identifier: MIT
// Copyright (c) 2026 The wgfleet authors
//
// The fleet at a glance, from the coordinator's admin API. The admin key is kept in
// this tab's session storage and sent only as a bearer header; every value is written
// with textContent, never as markup. Every list is shown a page at a time (keyset pages
// the API gives out, with next and previous), so nothing asks for the whole fleet.
"use strict";

const KEY = "wgfleet.admin_key";
const REFRESH_MS = 5000;
const SERVERS_PAGE = 50;
const ATTENTION_PAGE = 25;
const AUDIT_PAGE = 50;
const FOUND_PAGE = 10;
const HISTORY_SHOWN = 50;

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

// One list shown a page at a time. load(cursor) shows the page that starts at cursor
// (null: the first) and returns the next page's cursor, or null on the last page. The
// cursors of the pages before the one shown are kept, so previous goes back exactly.
class Pager {
	constructor(name, load) {
		this.name = name;
		this.load = load;
		this.reset();
		$(name + "-prev").addEventListener("click", () => this.turn(-1));
		$(name + "-next").addEventListener("click", () => this.turn(1));
	}

	reset() {
		this.back = [];
		this.cursor = null;
		this.next = null;
	}

	async show() {
		this.next = await this.load(this.cursor);
		$(this.name + "-prev").disabled = this.back.length === 0;
		$(this.name + "-next").disabled = !this.next;
		$(this.name + "-page").textContent = "page " + (this.back.length + 1);
		$(this.name + "-pager").dataset.page = String(this.back.length + 1);
	}

	async turn(step) {
		if (step > 0 && this.next) {
			this.back.push(this.cursor);
			this.cursor = this.next;
		} else if (step < 0 && this.back.length) {
			this.cursor = this.back.pop();
		} else {
			return;
		}
		try {
			await this.show();
		} catch (e) {
			$("error").textContent = "Cannot reach the API: " + e.message;
		}
	}
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

async function showServers(cursor) {
	const st = await api("/v1/status?limit=" + SERVERS_PAGE +
		(cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
	const counts = Object.entries(st.routers).sort();
	fill($("counts"), counts.map(([status, n]) => {
		const li = el("li");
		li.dataset.status = status;
		li.append(el("span", status, "state-" + status), el("span", " " + n));
		return li;
	}));
	$("server-count").textContent = "(" + st.servers_total + ")";
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
	return st.next_cursor;
}

function routerRow(r) {
	const tr = el("tr");
	tr.dataset.router = r.id;
	tr.append(el("td", r.vpn_status, "state-" + r.vpn_status), el("td", r.name || r.id),
		el("td", r.server), el("td", r.vpn_ip), el("td", r.status_reason || "", "reason"),
		el("td", ago(r.last_handshake_at)));
	return tr;
}

// The routers of one status that needs attention, a page at a time.
function routersOf(status) {
	return async (cursor) => {
		const page = await api("/v1/routers?status=" + status + "&limit=" + ATTENTION_PAGE +
			(cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
		fill($(status).tBodies[0], page.items.map(routerRow));
		return page.next_cursor;
	};
}

// The audit log from its newest entry back; a page's cursor is the id it starts below.
async function showAudit(before) {
	const page = await api("/v1/audit?order=newest&limit=" + AUDIT_PAGE +
		(before ? "&before=" + before : ""));
	fill($("audit").tBodies[0], page.items.map((a) => {
		const tr = el("tr");
		tr.dataset.audit = a.id;
		tr.append(el("td", ago(a.at)), el("td", a.tenant || ""), el("td", a.action),
			el("td", a.vpn_ip || ""), el("td", a.router_id || ""));
		return tr;
	}));
	return page.items.length === AUDIT_PAGE ? page.items[page.items.length - 1].id : null;
}

const pagers = {};

async function refresh() {
	try {
		await Promise.all(["servers", "failed", "disconnected", "audit"].map(
			(name) => pagers[name].show()));
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
// IPv4 or IPv6 text, loosely: the API says precisely what it refuses.
const ADDRESS = /^(\d{1,3}(\.\d{1,3}){3}|[0-9a-f:]*:[0-9a-f:.]*)$/i;

async function routerHistory(r) {
	const history = await api("/v1/audit?order=newest&limit=" + HISTORY_SHOWN + "&router=" +
		encodeURIComponent(r.id));
	const list = el("ol");
	list.className = "history";
	for (const a of history.items.slice().reverse())
		list.append(el("li", a.at + "  " + a.action + (a.detail && a.detail.reason
			? "  " + a.detail.reason : "")));
	return [el("h3", "History of " + (r.name || r.id) + " (the newest " + HISTORY_SHOWN +
		" entries at most)"), list];
}

// The routers the search box finds, a page at a time, each with its history.
async function showFound(cursor) {
	const q = $("search").value.trim(), out = $("found");
	let routers, next = null;
	out.replaceChildren();
	if (!q)
		return null;
	try {
		if (UUID.test(q)) {
			routers = [await api("/v1/routers/" + encodeURIComponent(q))];
		} else {
			// An IP address is looked up as one; anything else is a router's name.
			const field = ADDRESS.test(q) ? "&address=" : "&name=";
			const page = await api("/v1/routers?limit=" + FOUND_PAGE + field +
				encodeURIComponent(q) + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
			routers = page.items;
			next = page.next_cursor;
		}
	} catch (e) {
		out.append(el("p", e.status === 404 ? "No router has that id." : e.message, "error"));
		return null;
	}
	if (!routers.length)
		out.append(el("p", "No live router has that id, address or name.", "muted"));
	for (const r of routers) {
		const table = el("table");
		table.append(routerRow(r));
		out.append(table, ...await routerHistory(r));
	}
	return next;
}

function search(ev) {
	ev.preventDefault();
	pagers.found.reset();
	pagers.found.show().catch((e) => {
		$("found").replaceChildren(el("p", e.message, "error"));
	});
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
	for (const p of Object.values(pagers))
		p.reset();
	refresh();
	timer = setInterval(refresh, REFRESH_MS);
}

document.addEventListener("DOMContentLoaded", () => {
	pagers.servers = new Pager("servers", showServers);
	pagers.failed = new Pager("failed", routersOf("failed"));
	pagers.disconnected = new Pager("disconnected", routersOf("disconnected"));
	pagers.audit = new Pager("audit", showAudit);
	pagers.found = new Pager("found", showFound);
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
