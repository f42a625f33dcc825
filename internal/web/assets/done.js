"use strict";
// The page an OAuth popup of the Connect widget lands on: it tells the
// widget (its opener, on this same origin) how the flow ended, removes the
// result from the address bar, and closes.
(() => {
    const q = new URLSearchParams(location.search);
    const msg = { type: "valetkey:oauth-done", status: q.get("status") || "error", source_connection_id: q.get("source_connection_id") || "", error: q.get("error") || "" };
    history.replaceState(null, "", location.pathname);
    const text = document.getElementById("message");
    if (text)
        text.textContent = msg.status === "success" ? "Connected. You can close this window." : "Not connected (" + (msg.error || "error") + "). You can close this window.";
    const opener = window.opener;
    if (opener) {
        opener.postMessage(msg, location.origin);
        window.setTimeout(() => window.close(), 300);
    }
})();
