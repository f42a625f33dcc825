"use strict";
// The Connect widget: the page end users see. It talks only to the public
// /api/v1/embedded/widget routes with its scoped token, which it holds in
// memory (taken from the URL fragment and erased from the address bar, or
// handed over by embed.js with postMessage). Events go to the embedding
// window with targetOrigin exactly the session's allowed origin.
(() => {
    class ApiError extends Error {
        constructor(status, detail, retryAfter) {
            super(typeof detail === "string" ? detail : "Some fields need attention.");
            this.status = status;
            this.detail = detail;
            this.retryAfter = retryAfter;
        }
    }
    const params = new URLSearchParams(location.search);
    const allowedOrigin = params.get("allowedOrigin") || "";
    const host = window.parent !== window ? window.parent : window.opener;
    let token = "";
    let session = null;
    let connections = [];
    let hostVerified = false;
    const $ = (sel, root = document) => {
        const el = root.querySelector(sel);
        if (!el)
            throw new Error("missing " + sel);
        return el;
    };
    const main = $("#main");
    const status = $("#status");
    function h(tag, attrs = {}, ...children) {
        const el = document.createElement(tag);
        for (const [k, v] of Object.entries(attrs))
            el.setAttribute(k, v);
        for (const c of children)
            el.append(c);
        return el;
    }
    function isOrigin(s) {
        try {
            const u = new URL(s);
            return (u.protocol === "https:" || u.protocol === "http:") && u.origin === s;
        }
        catch {
            return false;
        }
    }
    // A widget token is base64(JSON {token, widgetUrl}); a bare JWT works too.
    function unwrap(t) {
        try {
            const inner = JSON.parse(atob(t));
            if (inner && typeof inner.token === "string")
                return inner.token;
        }
        catch {
            /* not wrapped */
        }
        return t;
    }
    function announce(msg) {
        status.textContent = msg;
    }
    async function api(method, path, body) {
        const headers = { Authorization: "Bearer " + token, Accept: "application/json" };
        if (body !== undefined)
            headers["Content-Type"] = "application/json";
        const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "omit", cache: "no-store" });
        if (resp.status === 204)
            return undefined;
        let data = null;
        try {
            data = await resp.json();
        }
        catch {
            /* empty body */
        }
        if (!resp.ok) {
            const detail = data && data.detail !== undefined ? data.detail : "The request failed (" + resp.status + ").";
            throw new ApiError(resp.status, detail, resp.headers.get("Retry-After"));
        }
        return data;
    }
    function emit(event, c) {
        if (host && hostVerified) {
            host.postMessage({ type: "valetkey:connection", event, connection_id: c.id, short_name: c.short_name }, allowedOrigin);
        }
    }
    function finishTopLevel(c) {
        // A top-level page (no embedding window) goes back to the team's app.
        if (!host && session && session.redirect_url) {
            const u = new URL(session.redirect_url);
            u.searchParams.set("status", "success");
            u.searchParams.set("source_connection_id", c.id);
            location.assign(u.toString());
        }
    }
    function monogram(name) {
        const letters = name.split(/\s+/).map((w) => w[0] || "").join("").slice(0, 2).toUpperCase();
        let hash = 0;
        for (const ch of name)
            hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
        const el = h("span", { class: "monogram", "aria-hidden": "true" }, letters);
        el.style.setProperty("--hue", String(hash % 360));
        return el;
    }
    function show(title, ...content) {
        const heading = h("h2", { tabindex: "-1", id: "screen-title" }, title);
        main.replaceChildren(heading, ...content);
        heading.focus();
        return heading;
    }
    function fail(msg) {
        main.replaceChildren(h("div", { class: "error-box", role: "alert" }, msg));
    }
    function statusLabel(s) {
        switch (s) {
            case "active": return "Connected";
            case "needs_reauth": return "Needs reconnecting";
            case "pending_auth": return "Not finished";
            default: return s.replace(/_/g, " ");
        }
    }
    function sourceOf(shortName) {
        return session?.sources.find((s) => s.short_name === shortName);
    }
    // ---- Home: the user's connections and the source grid ----
    function renderHome(focusSearch = false, query = "") {
        if (!session)
            return;
        const list = h("ul", { class: "connections", "aria-label": "Your connections" });
        for (const c of connections) {
            const actions = h("div", { class: "actions" });
            const src = sourceOf(c.short_name);
            if ((c.status === "needs_reauth" || c.status === "pending_auth") && src) {
                const re = h("button", { type: "button", class: "primary small", "data-action": "reconnect", "data-id": c.id }, "Reconnect");
                re.addEventListener("click", () => (src.oauth ? startOAuth(src, c) : renderForm(src, c)));
                actions.append(re);
            }
            const del = h("button", { type: "button", class: "ghost small", "data-action": "disconnect", "data-id": c.id, "aria-label": "Disconnect " + c.name }, "Disconnect");
            del.addEventListener("click", () => confirmDisconnect(del, c));
            actions.append(del);
            list.append(h("li", { class: "connection", "data-id": c.id, "data-status": c.status }, monogram(c.source_name), h("div", { class: "who" }, h("strong", {}, c.name), h("span", { class: "badge " + c.status }, statusLabel(c.status))), actions));
        }
        const search = h("input", { type: "search", id: "search", placeholder: "Search sources", "aria-label": "Search sources", autocomplete: "off" });
        search.value = query;
        const grid = h("ul", { class: "grid", id: "grid", "aria-label": "Sources" });
        const empty = h("p", { class: "muted", hidden: "" }, "No source matches.");
        const fill = () => {
            const q = search.value.trim().toLowerCase();
            grid.replaceChildren();
            for (const s of session.sources) {
                if (q && !(s.name.toLowerCase().includes(q) || s.category.toLowerCase().includes(q) || s.short_name.includes(q)))
                    continue;
                const card = h("button", { type: "button", class: "card", "data-source": s.short_name }, monogram(s.name), h("span", { class: "name" }, s.name), h("span", { class: "category" }, s.category.replace(/_/g, " ")));
                card.addEventListener("click", () => (s.oauth && s.fields.length === 0 ? startOAuth(s) : renderForm(s)));
                grid.append(h("li", {}, card));
            }
            empty.hidden = grid.childElementCount > 0;
        };
        search.addEventListener("input", fill);
        fill();
        const parts = [];
        if (connections.length > 0)
            parts.push(h("h3", {}, "Your connections"), list);
        parts.push(h("h3", {}, "Add a connection"), search, grid, empty);
        show("Connect your accounts", ...parts);
        if (focusSearch)
            search.focus();
    }
    function confirmDisconnect(btn, c) {
        if (btn.dataset.confirm !== "1") {
            btn.dataset.confirm = "1";
            btn.textContent = "Confirm disconnect";
            btn.classList.add("danger");
            return;
        }
        btn.disabled = true;
        api("DELETE", "/api/v1/integrations/sources/" + encodeURIComponent(c.id))
            .then(async () => {
            emit("deleted", c);
            announce(c.name + " disconnected.");
            await reload();
        })
            .catch((e) => {
            btn.disabled = false;
            announce(e.message);
        });
    }
    // ---- Forms generated from the catalog's field schema ----
    function renderForm(src, existing) {
        const form = h("form", { novalidate: "", "data-source": src.short_name });
        const summary = h("div", { class: "error-box", role: "alert", hidden: "" });
        form.append(summary);
        const inputs = new Map();
        const fields = existing ? src.fields.filter((f) => f.in === "auth_fields") : src.fields;
        for (const f of fields) {
            const id = "f-" + f.in + "-" + f.name;
            const input = h("input", { id, name: f.name, type: f.secret ? "password" : f.type === "integer" || f.type === "number" ? "number" : "text", autocomplete: "off", spellcheck: "false" });
            if (f.required)
                input.required = true;
            const err = h("p", { class: "field-error", id: id + "-error", hidden: "" });
            const describedBy = [id + "-error"];
            const row = h("div", { class: "field" }, h("label", { for: id }, f.title + (f.required ? "" : " (optional)")));
            if (f.description) {
                row.append(h("p", { class: "hint", id: id + "-hint" }, f.description));
                describedBy.push(id + "-hint");
            }
            input.setAttribute("aria-describedby", describedBy.join(" "));
            row.append(input, err);
            form.append(row);
            inputs.set(f.in + "." + f.name, { input, err, field: f });
        }
        const submitLabel = src.oauth ? "Continue with " + src.name : existing ? "Save and reconnect" : "Connect";
        const submit = h("button", { type: "submit", class: "primary" }, submitLabel);
        const back = h("button", { type: "button", class: "ghost" }, "Back");
        back.addEventListener("click", () => renderHome());
        form.append(h("div", { class: "buttons" }, back, submit));
        const clearErrors = () => {
            summary.hidden = true;
            for (const { input, err } of inputs.values()) {
                err.hidden = true;
                err.textContent = "";
                input.removeAttribute("aria-invalid");
            }
        };
        const showErrors = (e) => {
            if (typeof e.detail === "string") {
                summary.textContent = e.detail;
                summary.hidden = false;
                return;
            }
            const unplaced = [];
            let first = null;
            for (const p of e.detail) {
                const where = p.loc.length >= 3 ? p.loc[1] + "." + p.loc[2] : "";
                const slot = inputs.get(where);
                if (!slot) {
                    unplaced.push(p.msg);
                    continue;
                }
                slot.err.textContent = p.msg;
                slot.err.hidden = false;
                slot.input.setAttribute("aria-invalid", "true");
                first = first || slot.input;
            }
            summary.textContent = unplaced.length ? unplaced.join(" ") : "Please correct the highlighted fields.";
            summary.hidden = false;
            first?.focus();
        };
        form.addEventListener("submit", async (ev) => {
            ev.preventDefault();
            clearErrors();
            const auth = {};
            const config = {};
            for (const { input, field } of inputs.values()) {
                const raw = input.value;
                if (raw === "" && !field.required)
                    continue;
                const v = field.type === "integer" || field.type === "number" ? (raw === "" ? raw : Number(raw)) : field.type === "boolean" ? raw === "true" : raw;
                (field.in === "config" ? config : auth)[field.name] = v;
            }
            if (src.oauth) {
                startOAuth(src, existing, config, showErrors);
                return;
            }
            submit.disabled = true;
            announce("Connecting " + src.name + "…");
            try {
                const res = existing
                    ? await api("POST", "/api/v1/embedded/widget/connections/" + encodeURIComponent(existing.id) + "/reconnect", { auth_fields: auth })
                    : await api("POST", "/api/v1/embedded/widget/connections", { short_name: src.short_name, auth_fields: auth, config });
                emit(existing ? "reconnected" : "created", res.connection);
                announce(src.name + " connected.");
                finishTopLevel(res.connection);
                await reload();
            }
            catch (e) {
                submit.disabled = false;
                announce("");
                if (e instanceof ApiError)
                    showErrors(e);
                else
                    summary.textContent = "Network error: try again.", (summary.hidden = false);
            }
        });
        const intro = existing
            ? h("p", {}, "Enter new credentials for " + existing.name + ".")
            : h("p", { class: "muted" }, src.description);
        show((existing ? "Reconnect " : "Connect ") + src.name, intro, form);
        const firstInput = form.querySelector("input");
        if (firstInput)
            firstInput.focus();
    }
    // ---- OAuth in a popup ----
    let pending = null;
    window.addEventListener("message", (e) => {
        // The popup's landing page is on our own origin.
        if (e.origin !== location.origin || !pending || e.source !== pending.popup)
            return;
        const d = e.data;
        if (d && d.type === "valetkey:oauth-done")
            pending.done(d);
    });
    function startOAuth(src, existing, config = {}, onInvalid) {
        // Open the window in the click's turn, or popup blockers close it.
        const popup = window.open("about:blank", "valetkey-oauth", "popup,width=520,height=700");
        if (!popup) {
            fail("Your browser blocked the sign-in window. Allow pop-ups for this page and try again.");
            return;
        }
        const progress = h("p", { class: "progress", role: "status" }, "Waiting for " + src.name + "… Finish signing in in the window that opened.");
        const cancel = h("button", { type: "button", class: "ghost" }, "Cancel");
        cancel.addEventListener("click", () => {
            popup.close();
            pending = null;
            void reload();
        });
        show("Connecting " + src.name, h("div", { class: "spinner", "aria-hidden": "true" }), progress, cancel);
        const req = existing
            ? api("POST", "/api/v1/embedded/widget/connections/" + encodeURIComponent(existing.id) + "/reconnect", {})
            : api("POST", "/api/v1/embedded/widget/connections", { short_name: src.short_name, config });
        req.then((res) => {
            popup.location.href = res.auth_url;
            const timer = window.setInterval(() => {
                if (popup.closed && pending) {
                    window.clearInterval(timer);
                    pending = null;
                    announce("The sign-in window was closed before it finished.");
                    void reload();
                }
            }, 500);
            pending = {
                popup,
                done: (m) => {
                    window.clearInterval(timer);
                    pending = null;
                    if (m.status === "success") {
                        emit(existing ? "reconnected" : "created", res.connection);
                        announce(src.name + " connected.");
                        finishTopLevel(res.connection);
                    }
                    else {
                        announce(src.name + " was not connected (" + (m.error || "error") + ").");
                    }
                    void reload(m.status === "success" ? "" : src.name + " was not connected: " + (m.error === "access_denied" ? "access was denied." : "the sign-in failed."));
                },
            };
        }).catch((e) => {
            popup.close();
            if (e instanceof ApiError && Array.isArray(e.detail) && onInvalid) {
                renderForm(src, existing);
                const form = main.querySelector("form");
                if (form)
                    onInvalid(e);
                return;
            }
            renderHome();
            announce(e.message);
            const box = h("div", { class: "error-box", role: "alert" }, e.message);
            main.prepend(box);
        });
    }
    // ---- Start ----
    async function reload(errorMsg = "") {
        const res = await api("GET", "/api/v1/embedded/widget/connections");
        connections = res.data;
        renderHome();
        if (errorMsg)
            main.prepend(h("div", { class: "error-box", role: "alert" }, errorMsg));
    }
    function applyBranding(s) {
        const root = document.documentElement;
        if (s.organization.accent_color)
            root.style.setProperty("--accent", s.organization.accent_color);
        $("#org-name").textContent = s.organization.name;
        const logo = $("#logo");
        if (s.organization.logo_url) {
            const img = h("img", { alt: s.organization.name + " logo" });
            img.src = s.organization.logo_url;
            logo.replaceChildren(img);
        }
        else {
            logo.replaceChildren(monogram(s.organization.name));
        }
    }
    async function start() {
        try {
            session = await api("GET", "/api/v1/embedded/widget/session");
        }
        catch (e) {
            fail(e instanceof ApiError && e.status === 401 ? "This session has expired. Close this window and start again." : e.message);
            return;
        }
        // The embedding window must be the one the token names.
        if (host && session.allowed_origin !== allowedOrigin) {
            fail("This widget was opened from a page its session does not allow.");
            return;
        }
        hostVerified = host !== null && isOrigin(allowedOrigin) && session.allowed_origin === allowedOrigin;
        applyBranding(session);
        await reload();
    }
    const theme = params.get("theme");
    if (theme === "dark" || theme === "light")
        document.documentElement.dataset.theme = theme;
    $("#close").addEventListener("click", () => {
        if (host && hostVerified)
            host.postMessage({ type: "valetkey:close" }, allowedOrigin);
        else
            window.close();
    });
    const frag = new URLSearchParams(location.hash.slice(1));
    const fromFragment = frag.get("token");
    if (fromFragment) {
        token = unwrap(fromFragment);
        history.replaceState(null, "", location.pathname + location.search); // the token lives in memory only
        void start();
    }
    else if (host && isOrigin(allowedOrigin)) {
        window.addEventListener("message", (e) => {
            if (e.origin !== allowedOrigin || e.source !== host || token)
                return;
            const d = e.data;
            if (d && d.type === "valetkey:token" && typeof d.token === "string") {
                token = unwrap(d.token);
                void start();
            }
        });
        host.postMessage({ type: "valetkey:ready" }, allowedOrigin);
    }
    else {
        fail("This page needs a session: open it from your app.");
    }
})();
