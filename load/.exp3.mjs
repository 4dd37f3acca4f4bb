import uWS from "uWebSockets.js";
import http from "node:http";
const mode = process.argv[2];
const app = uWS.App();
app.post("/x", (res) => {
  let got = 0, done = false, aborted = false;
  res.onAborted(() => { aborted = true; console.log("aborted at", got); });
  res.onData((ab, last) => {
    got += ab.byteLength;
    if (!done && got > 1024 * 1024) {
      done = true;
      if (mode === "now") res.cork(() => res.writeStatus("413 Payload Too Large").end("too big", false));
      if (mode === "nowclose") res.cork(() => res.writeStatus("413 Payload Too Large").writeHeader("connection", "close").end("too big", false));
      if (mode === "later") Promise.resolve().then(() => res.cork(() => res.writeStatus("413 Payload Too Large").writeHeader("connection", "close").end("too big", false)));
    }
    if (last) { console.log("last at", got); if (mode === "atend" && !aborted) res.cork(() => res.writeStatus("413 Payload Too Large").end("too big", false)); }
  });
});
app.listen("127.0.0.1", 0, (tok) => {
  const port = uWS.us_socket_local_port(tok);
  const req = http.request({ host: "127.0.0.1", port, path: "/x", method: "POST", agent: false }, (resp) => {
    resp.resume(); resp.on("end", () => { console.log("client got", resp.statusCode); process.exit(0); });
  });
  req.on("error", (e) => { console.log("client err", e.code); setTimeout(() => process.exit(0), 200); });
  const piece = Buffer.alloc(64 * 1024, 97); let sent = 0;
  const pump = () => { while (sent < 16 * 1024 * 1024) { sent += piece.length; if (!req.write(piece)) { req.once("drain", pump); return; } } req.end(); };
  pump();
});
