// embed.js: lets a host page open the Connect widget with one call and hear
// its events.
//
//   <script src="https://valetkey.example.com/embed.js"></script>
//   const w = Valetkey.open({ token, onEvent: (e) => console.log(e) });
//
// token is the whole value from POST /connect/sessions or
// /api/v1/embedded/widget_token. The widget is opened in an iframe (a modal
// overlay, or inside `container`) or, with mode: "popup", in a window of its
// own; the token is handed over with postMessage once the widget says it is
// ready, so it never appears in a URL.
(() => {
  interface OpenOptions {
    token: string;
    onEvent?: (e: { type: string; event: string; connection_id: string; short_name: string }) => void;
    onClose?: () => void;
    mode?: "iframe" | "popup";
    container?: HTMLElement | string;
    theme?: "light" | "dark";
  }
  interface Handle { close(): void }

  const script = document.currentScript as HTMLScriptElement | null;
  const scriptOrigin = script ? new URL(script.src, location.href).origin : location.origin;

  function widgetURL(token: string, theme?: string): URL {
    let u: URL | null = null;
    try {
      const inner = JSON.parse(atob(token));
      if (inner && typeof inner.widgetUrl === "string") u = new URL(inner.widgetUrl);
    } catch {
      /* a bare JWT: use this script's server */
    }
    if (!u) {
      u = new URL(scriptOrigin + "/embedded-widget");
      u.searchParams.set("allowedOrigin", location.origin);
    }
    if (theme) u.searchParams.set("theme", theme);
    return u;
  }

  function open(opts: OpenOptions): Handle {
    if (!opts || typeof opts.token !== "string" || opts.token === "") throw new Error("Valetkey.open: token is required");
    const url = widgetURL(opts.token, opts.theme);
    const origin = url.origin;
    let target: Window | null = null;
    let cleanup = () => {};
    let closed = false;

    const onMessage = (e: MessageEvent) => {
      if (e.origin !== origin || !target || e.source !== target) return;
      const d = e.data;
      if (!d || typeof d.type !== "string") return;
      if (d.type === "valetkey:ready") {
        target.postMessage({ type: "valetkey:token", token: opts.token }, origin);
      } else if (d.type === "valetkey:connection") {
        opts.onEvent?.({ type: d.type, event: d.event, connection_id: d.connection_id, short_name: d.short_name });
      } else if (d.type === "valetkey:close") {
        handle.close();
      }
    };
    window.addEventListener("message", onMessage);

    const handle: Handle = {
      close() {
        if (closed) return;
        closed = true;
        window.removeEventListener("message", onMessage);
        cleanup();
        opts.onClose?.();
      },
    };

    if (opts.mode === "popup") {
      const w = window.open(url.toString(), "valetkey-connect", "popup,width=480,height=720");
      if (!w) throw new Error("Valetkey.open: the browser blocked the popup");
      target = w;
      const timer = window.setInterval(() => {
        if (w.closed) handle.close();
      }, 500);
      cleanup = () => {
        window.clearInterval(timer);
        if (!w.closed) w.close();
      };
      return handle;
    }

    const frame = document.createElement("iframe");
    frame.src = url.toString();
    frame.title = "Connect your accounts";
    frame.setAttribute("allow", "");
    frame.style.border = "0";
    frame.style.width = "100%";
    frame.style.height = "100%";
    let mount: HTMLElement;
    const container = typeof opts.container === "string" ? document.querySelector<HTMLElement>(opts.container) : opts.container;
    if (container) {
      mount = frame;
      container.append(frame);
    } else {
      const overlay = document.createElement("div");
      overlay.setAttribute("role", "dialog");
      overlay.setAttribute("aria-modal", "true");
      overlay.setAttribute("aria-label", "Connect your accounts");
      Object.assign(overlay.style, { position: "fixed", inset: "0", background: "rgba(15,23,42,.55)", display: "flex", alignItems: "center", justifyContent: "center", zIndex: "2147483647" });
      const box = document.createElement("div");
      Object.assign(box.style, { width: "min(480px, 100vw)", height: "min(720px, 100vh)", borderRadius: "12px", overflow: "hidden", boxShadow: "0 20px 50px rgba(0,0,0,.35)", background: "#fff" });
      box.append(frame);
      overlay.append(box);
      overlay.addEventListener("keydown", (e) => {
        if (e.key === "Escape") handle.close();
      });
      document.body.append(overlay);
      mount = overlay;
    }
    target = frame.contentWindow;
    frame.addEventListener("load", () => {
      target = frame.contentWindow;
    });
    cleanup = () => mount.remove();
    frame.focus();
    return handle;
  }

  (window as unknown as { Valetkey: { open: typeof open } }).Valetkey = { open };
})();
