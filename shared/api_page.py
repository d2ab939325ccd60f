"""The ``/docs`` page both services serve: their OpenAPI document, readable in a browser.

The document itself needs a key (``/openapi.json``, like every route); the page holds no
data: it asks for the key once (kept in the tab's sessionStorage, or taken from
``/docs#key=KEY``), fetches the document with it and lists every route with its parameters,
body and answers; a GET route can be tried from the page. Self-contained (no script from the
internet, unlike Swagger UI's default page)."""

from __future__ import annotations

import html

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>%(title)s: API</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; max-width: 60rem; }
 .route { border: 1px solid #ddd; border-radius: 4px; margin: .6rem 0; padding: .4rem .8rem; }
 .method { font-weight: bold; display: inline-block; width: 4rem; }
 code, pre { background: #f6f6f6; } pre { padding: .5rem; overflow: auto; max-height: 20rem; }
 #auth.problem { background: #fdecea; border: 1px solid #e57373; padding: .5rem; }
</style></head><body>
<h1>%(title)s: API reference</h1>
<form id="auth"><span id="auth-message">The API needs a key (Authorization: Bearer KEY or
 X-API-Key: KEY); it is kept for this browser tab only.</span>
 <input id="key" type="password" size="40" placeholder="API key" autocomplete="off">
 <button type="submit">use this key</button></form>
<div id="routes"></div>
<script>
let KEY = new URLSearchParams(location.hash.slice(1)).get("key") ||
  sessionStorage.getItem("targetfuse-key");
const ESC = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"};
const esc = x => String(x).replace(/[&<>"']/g, c => ESC[c]);
const headers = () => KEY ? {Authorization: `Bearer ${KEY}`} : {};
document.querySelector("#auth").addEventListener("submit", ev => {
  ev.preventDefault(); KEY = document.querySelector("#key").value.trim();
  sessionStorage.setItem("targetfuse-key", KEY); history.replaceState(null, "", "/docs"); load();
});
async function load() {
  const r = await fetch("/openapi.json", {headers: headers()});
  const msg = document.querySelector("#auth-message"), form = document.querySelector("#auth");
  if (r.status === 401 || r.status === 403) {
    form.className = "problem"; form.dataset.status = r.status;
    msg.textContent = r.status === 401 ? "No API key: enter one to read the API."
      : "Wrong API key: not one of this service's keys. Enter the right one:";
    return;
  }
  if (KEY) sessionStorage.setItem("targetfuse-key", KEY);
  form.className = ""; msg.textContent = "Key accepted (kept for this tab).";
  const doc = await r.json(), out = [];
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const params = (op.parameters || []).map(p => `<code>${esc(p.name)}</code>
        (${esc(p.in)}${p.required ? ", required" : ""})`).join(", ") || "none";
      const answers = Object.entries(op.responses || {}).map(([s, v]) =>
        `<code>${esc(s)}</code> ${esc(v.description || "")}`).join("<br>");
      const body = op.requestBody ? `<div>body: ${esc(Object.keys(op.requestBody.content)
        .join(", "))}</div>` : "";
      const tryIt = method === "get" ? `<button data-path="${esc(path)}">try</button>
        <pre hidden></pre>` : "";
      out.push(`<div class="route" data-route="${esc(method.toUpperCase())} ${esc(path)}">
        <span class="method">${esc(method.toUpperCase())}</span><code>${esc(path)}</code>
        <div>${esc(op.summary || "")}</div><div>parameters: ${params}</div>${body}
        <div>answers:<br>${answers}</div>${tryIt}</div>`);
    }
  }
  const box = document.querySelector("#routes");
  box.innerHTML = `<p>${esc(doc.info.title)} ${esc(doc.info.version)}: ${out.length}
    routes (the OpenAPI document: <code>/openapi.json</code>, with the key).</p>` + out.join("");
  box.querySelectorAll("button[data-path]").forEach(b => b.addEventListener("click", async () => {
    let path = b.dataset.path;
    for (const name of path.match(/{[^}]+}/g) || []) {
      const v = prompt(name.slice(1, -1)); if (v === null) return;
      path = path.replace(name, encodeURIComponent(v));
    }
    const res = await fetch(path, {headers: headers()}), pre = b.nextElementSibling;
    pre.hidden = false; pre.textContent = `${res.status}\\n` + await res.text();
  }));
  document.body.dataset.ready = "1";
}
load();
</script></body></html>
"""


def api_page(title: str) -> str:
    return PAGE % {"title": html.escape(title)}
