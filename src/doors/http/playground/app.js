// Spillway playground: chat over SSE, voice over the realtime WebSocket, live metrics.
// Plain browser JavaScript, no framework and no build step.

const $ = (id) => document.getElementById(id);
const keyInput = $("key");
keyInput.value = localStorage.getItem("spillway-key") ?? "";
keyInput.addEventListener("change", () => {
  localStorage.setItem("spillway-key", keyInput.value);
  void loadModels();
});
const authHeaders = () => (keyInput.value ? { authorization: `Bearer ${keyInput.value}` } : {});

for (const tab of document.querySelectorAll(".tab")) {
  tab.addEventListener("click", () => {
    for (const t of document.querySelectorAll(".tab")) t.classList.toggle("active", t === tab);
    for (const p of document.querySelectorAll(".panel")) p.classList.toggle("active", p.id === tab.dataset.tab);
  });
}

async function loadModels() {
  const res = await fetch("/v1/models", { headers: authHeaders() });
  if (!res.ok) return;
  const { data } = await res.json();
  const fill = (select, capability, preferred) => {
    select.innerHTML = "";
    for (const m of data.filter((m) => (m.capabilities ?? ["text"]).includes(capability))) {
      const o = new Option(m.available === false ? `${m.id} (unavailable)` : m.id, m.id);
      o.disabled = m.available === false;
      select.add(o);
    }
    if ([...select.options].some((o) => o.value === preferred)) select.value = preferred;
  };
  fill($("chat-model"), "text", "local/echo");
  fill($("voice-model"), "realtime", "local/realtime");
}

// ---- Chat: POST /v1/chat/completions with stream: true, read the SSE body as it arrives.
const history = [];
function bubble(role, text) {
  const div = document.createElement("div");
  div.className = `msg ${role}`;
  div.textContent = text;
  $("messages").append(div);
  $("messages").scrollTop = 1e9;
  return div;
}

$("chat-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const text = $("chat-input").value.trim();
  if (!text) return;
  $("chat-input").value = "";
  history.push({ role: "user", content: text });
  bubble("user", text);
  const out = bubble("assistant", "");
  $("chat-send").disabled = true;
  try {
    const res = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: { "content-type": "application/json", ...authHeaders() },
      body: JSON.stringify({ model: $("chat-model").value, messages: history, stream: true }),
    });
    if (!res.ok) throw new Error((await res.json()).error?.message ?? res.statusText);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buf += value;
      let at;
      while ((at = buf.indexOf("\n\n")) >= 0) {
        const frame = buf.slice(0, at);
        buf = buf.slice(at + 2);
        const data = frame.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
        if (!data || data === "[DONE]") continue;
        const j = JSON.parse(data);
        if (j.error) throw new Error(j.error.message);
        out.textContent += j.choices?.[0]?.delta?.content ?? "";
      }
    }
    history.push({ role: "assistant", content: out.textContent });
  } catch (err) {
    out.className = "msg error";
    out.textContent = String(err.message ?? err);
  } finally {
    $("chat-send").disabled = false;
  }
});

// ---- Voice: microphone → pcm16 24 kHz → input_audio_buffer.append; audio deltas played back.
const RATE = 24000;
let voice;

function toBase64(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function fromBase64(b64) {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

async function startVoice() {
  const ctx = new AudioContext({ sampleRate: RATE });
  const mic = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true } });
  const protocols = ["realtime"];
  if (keyInput.value) protocols.push(`openai-insecure-api-key.${keyInput.value}`);
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/v1/realtime?model=${encodeURIComponent($("voice-model").value)}`, protocols);
  const source = ctx.createMediaStreamSource(mic);
  const proc = ctx.createScriptProcessor(2048, 1, 1);
  let playAt = 0;
  let audioMs = 0;
  let userLine = "";
  voice = { ctx, mic, ws, proc };
  ws.onopen = () => {
    $("voice-status").textContent = "listening";
    source.connect(proc);
    proc.connect(ctx.destination);
  };
  proc.onaudioprocess = (ev) => {
    if (ws.readyState !== WebSocket.OPEN) return;
    const f = ev.inputBuffer.getChannelData(0);
    const pcm = new Int16Array(f.length);
    for (let i = 0; i < f.length; i++) pcm[i] = Math.max(-32768, Math.min(32767, Math.round(f[i] * 32767)));
    ws.send(JSON.stringify({ type: "input_audio_buffer.append", audio: toBase64(new Uint8Array(pcm.buffer)) }));
    ev.outputBuffer.getChannelData(0).fill(0);
  };
  ws.onmessage = (m) => {
    const e = JSON.parse(m.data);
    switch (e.type) {
      case "input_audio_buffer.speech_started":
        $("voice-status").textContent = "hearing you";
        break;
      case "input_audio_buffer.speech_stopped":
        $("voice-status").textContent = "thinking";
        break;
      case "conversation.item.input_audio_transcription.completed":
        userLine = e.transcript;
        $("voice-user").textContent = userLine || "(nothing recognized)";
        break;
      case "response.created":
        $("voice-reply").textContent = "";
        break;
      case "response.output_audio_transcript.delta":
      case "response.output_text.delta":
        $("voice-reply").textContent += e.delta;
        break;
      case "response.output_audio.delta": {
        const bytes = fromBase64(e.delta);
        const samples = new Int16Array(bytes.buffer, 0, bytes.length >> 1);
        const buf = ctx.createBuffer(1, samples.length, RATE);
        const ch = buf.getChannelData(0);
        for (let i = 0; i < samples.length; i++) ch[i] = samples[i] / 32768;
        const node = ctx.createBufferSource();
        node.buffer = buf;
        node.connect(ctx.destination);
        playAt = Math.max(playAt, ctx.currentTime);
        node.start(playAt);
        playAt += buf.duration;
        audioMs += (samples.length / RATE) * 1000;
        $("voice-audio-ms").textContent = String(Math.round(audioMs));
        $("voice-status").textContent = "speaking";
        break;
      }
      case "response.done":
        $("voice-status").textContent = "listening";
        break;
      case "error":
        $("voice-status").textContent = `error: ${e.error?.message ?? "unknown"}`;
        break;
    }
  };
  ws.onclose = () => stopVoice();
  $("voice-start").disabled = true;
  $("voice-stop").disabled = false;
}

function stopVoice() {
  if (!voice) return;
  const { ctx, mic, ws, proc } = voice;
  voice = undefined;
  proc.disconnect();
  for (const t of mic.getTracks()) t.stop();
  if (ws.readyState <= WebSocket.OPEN) ws.close();
  void ctx.close();
  $("voice-status").textContent = "idle";
  $("voice-start").disabled = false;
  $("voice-stop").disabled = true;
}

$("voice-start").addEventListener("click", () => {
  startVoice().catch((err) => ($("voice-status").textContent = `error: ${err.message}`));
});
$("voice-stop").addEventListener("click", stopVoice);

// ---- Live metrics from /metrics (Prometheus text).
function ttftP50(lines) {
  const buckets = new Map();
  let count = 0;
  for (const l of lines) {
    const m = /^spillway_time_to_first_chunk_seconds_bucket\{.*le="([^"]+)".*\} (\S+)$/.exec(l);
    if (m) buckets.set(m[1], (buckets.get(m[1]) ?? 0) + Number(m[2]));
    const c = /^spillway_time_to_first_chunk_seconds_count\{.*\} (\S+)$/.exec(l);
    if (c) count += Number(c[1]);
  }
  if (!count) return "–";
  const sorted = [...buckets].map(([le, n]) => [le === "+Inf" ? Infinity : Number(le), n]).sort((a, b) => a[0] - b[0]);
  const hit = sorted.find(([, n]) => n >= count / 2);
  return !hit || hit[0] === Infinity ? "> 30 s" : `≤ ${hit[0] * 1000} ms`;
}

async function refreshMetrics() {
  try {
    const lines = (await (await fetch("/metrics")).text()).split("\n");
    const sum = (prefix) => lines.filter((l) => l.startsWith(prefix)).reduce((a, l) => a + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
    $("m-active").textContent = String(sum("spillway_active_streams{"));
    $("m-requests").textContent = String(sum("spillway_requests_total{"));
    $("m-ttft").textContent = ttftP50(lines);
  } catch {
    // The panel is best effort.
  }
}

// ---- Console: GET /v1/spillway/console once a second while the tab is open.
function cell(row, text, bad = false) {
  const td = row.insertCell();
  td.textContent = text;
  if (bad) td.className = "bad";
}

function fillTable(id, rows, columns) {
  const body = $(id).tBodies[0];
  body.innerHTML = "";
  for (const r of rows) {
    const tr = body.insertRow();
    for (const [value, bad] of columns(r)) cell(tr, value, bad);
  }
}

function chart(id, points) {
  const svg = $(id);
  svg.innerHTML = "";
  const values = points.filter((p) => p !== null);
  if (values.length === 0) return;
  const max = Math.max(1, ...values);
  const step = 600 / Math.max(1, points.length - 1);
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", points.map((v, i) => `${(i * step).toFixed(1)},${(120 - ((v ?? 0) / max) * 110).toFixed(1)}`).join(" "));
  line.dataset.points = String(points.length);
  line.dataset.max = String(max);
  svg.append(line);
}

const limit = (used, max) => (max === null ? String(used) : `${used} / ${max}`);

async function refreshConsole() {
  if (!$("console").classList.contains("active")) return;
  const res = await fetch("/v1/spillway/console", { headers: authHeaders() });
  if (!res.ok) return;
  const c = await res.json();
  const series = c.series.slice(-300);
  chart("chart-ttft", series.map((s) => s.ttftMs));
  chart("chart-active", series.map((s) => s.active));
  fillTable("console-providers", c.providers, (p) => [
    [p.name, false],
    [p.state, p.state !== "ok"],
    [p.unavailable.map((u) => `${u.model}: ${u.reason}`).join("; "), false],
  ]);
  fillTable("console-keys", c.keys, (k) => [
    [k.name, false],
    [limit(k.requestsLastMinute, k.rpm), k.rpm !== null && k.requestsLastMinute >= k.rpm],
    [limit(k.tokensLastMinute, k.tpm), k.tpm !== null && k.tokensLastMinute >= k.tpm],
    [limit(k.openStreams, k.maxConcurrentStreams), false],
  ]);
  fillTable("console-requests", c.requests.slice(0, 100), (r) => [
    [new Date(r.at).toLocaleTimeString(), false],
    [r.door, false],
    [r.route, false],
    [r.model, false],
    [r.provider, false],
    [r.key, false],
    [String(r.status), typeof r.status === "number" ? r.status >= 400 : r.status !== "OK" && r.status !== "ok"],
    [r.ttftMs === null ? "–" : r.ttftMs.toFixed(1), false],
    [r.durationMs.toFixed(1), false],
    [`${r.inputTokens} / ${r.outputTokens}`, false],
    [r.cache ?? "–", false],
  ]);
}

void loadModels();
void refreshMetrics();
setInterval(refreshMetrics, 2000);
setInterval(() => void refreshConsole().catch(() => undefined), 1000);
for (const tab of document.querySelectorAll('.tab[data-tab="console"]')) tab.addEventListener("click", () => void refreshConsole());
