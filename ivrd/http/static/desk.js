// The agent's desk: sign-in, state, queues, the caller's context as the call rings, and (for agents
// whose phone is this page) the call itself over WebRTC. One WebSocket to ivrd carries everything.
"use strict";

const desk = {
  socket: null, agent: null, browser: false, iceServers: [], dispositions: {},
  leg: null, call: null, pc: null, mic: null, analyser: null, statusTimer: null,
  answered: false, wrapUntil: 0,
};
window.desk = desk;  // what the page knows, for a look from the browser's console
const BUILT_IN = new Set(["caller", "dialed", "call", "now"]);  // every flow's own variables

function send(message) {
  if (desk.socket && desk.socket.readyState === WebSocket.OPEN) desk.socket.send(JSON.stringify(message));
}

function text(parent, tag, content, className) {
  const node = document.createElement(tag);
  node.textContent = content;
  if (className) node.className = className;
  parent.appendChild(node);
  return node;
}

// ---- sign-in and the socket -------------------------------------------------------------------

async function signInForm(event) {
  event.preventDefault();
  const problem = await signIn($("agent").value, $("password").value);
  $("password").value = "";
  $("sign-in-error").textContent = problem || "";
  if (!problem) connect();
}

function connect() {
  const socket = new WebSocket(socketUrl("/desk/socket"));
  desk.socket = socket;
  socket.onmessage = (event) => handle(JSON.parse(event.data));
  socket.onclose = () => {
    clearInterval(desk.statusTimer);
    endMedia();
    $("desk").hidden = true; $("who").hidden = true; $("sign-in").hidden = false;
  };
}

async function signOut() {
  await fetch("/desk/signout", {method: "POST", credentials: "same-origin"});
  if (desk.socket) desk.socket.close();
}

// ---- what ivrd says -------------------------------------------------------------------------------

function handle(message) {
  if (message.event) return pushed(message);  // the same pushes the API's agent socket gets
  switch (message.type) {
    case "hello":
      desk.agent = message.agent; desk.browser = message.browser;
      desk.iceServers = message.ice_servers; desk.dispositions = message.dispositions; desk.wrapUp = message.wrap_up;
      $("sign-in").hidden = true; $("desk").hidden = false; $("who").hidden = false;
      showAgent(message.agent);
      send({type: "status"});
      desk.statusTimer = setInterval(() => send({type: "status"}), 2000);
      break;
    case "status": showAgent(message.agent); showQueues(message.queues); break;
    case "ring": ring(message); send({type: "status"}); break;
    case "history": if (message.leg === desk.leg) showHistory(message.calls); break;
    case "answer": if (desk.pc && message.leg === desk.leg) desk.pc.setRemoteDescription({type: "answer", sdp: message.sdp}); break;
    case "ended": if (message.leg === desk.leg) ended(message.reason); break;
    case "error": $("desk-error").textContent = message.message; break;
  }
}

function pushed(message) {
  // an agent with a desk phone: the context shows as their phone rings
  if (desk.browser) return;
  if (message.event === "offer") showCall(message.call, "Your phone is ringing");
  else if (message.event === "answered") $("call-title").textContent = "On a call";
  else if (message.event === "ended") { desk.answered = true; ended("ended"); }
  else if (message.event === "missed") $("call").hidden = true;
}

function showAgent(agent) {
  $("agent-name").textContent = `${agent.name} (${agent.id})`;
  const state = $("agent-state");
  state.textContent = agent.state.replace("_", "-") + (agent.reason ? `: ${agent.reason}` : "");
  state.className = `state ${agent.state}`;
  state.dataset.state = agent.state;
  // wrap-up counts down the last call's queue's time; the router makes the agent available after it
  const wrap = desk.call ? desk.wrapUp[desk.call.queue] : undefined;
  $("wrap-countdown").textContent = agent.state === "wrap_up" && wrap !== undefined
    ? `${Math.max(0, Math.ceil(wrap - agent.seconds_in_state))} s left` : "";
}

function showQueues(queues) {
  const body = $("queues").tBodies[0];
  body.replaceChildren();
  for (const queue of queues) {
    const row = body.insertRow();
    row.dataset.queue = queue.name;
    for (const value of [queue.name, queue.waiting, `${Math.round(queue.oldest_wait)} s`, queue.staffed]) {
      row.insertCell().textContent = value;
    }
  }
}

function showCall(call, title) {
  desk.call = call;
  $("call").hidden = false;
  $("wrap-up").hidden = true;
  $("call-title").textContent = title;
  const caller = call.caller || {};
  $("call-caller").textContent = [caller.name, caller.number].filter(Boolean).join(" ") || "unknown caller";
  $("call-meta").textContent = `dialed ${call.dialed || "-"}, queue ${call.queue || "-"}, flow ${call.flow || "-"}`;
  showPath($("call-path"), call.path || []);
  const variables = $("call-variables");
  variables.replaceChildren();
  for (const [name, value] of Object.entries(call.variables || {})) {
    if (BUILT_IN.has(name)) continue;  // shown above, or the clock
    text(variables, "dt", name);
    text(variables, "dd", typeof value === "object" ? JSON.stringify(value) : String(value));
  }
  showHistory([]);
}

function showHistory(calls) {
  const body = $("history").tBodies[0];
  body.replaceChildren();
  for (const call of calls) {
    const row = body.insertRow();
    const when = new Date(call.started * 1000).toLocaleString();
    for (const value of [when, call.outcome, call.queue, call.agent, call.disposition, call.note]) {
      row.insertCell().textContent = value || "";
    }
    if (call.conversation && call.conversation.length) {  // what was said, when it was transcribed
      const said = body.insertRow().insertCell();
      said.colSpan = 6;
      const details = document.createElement("details");
      text(details, "summary", "What was said");
      for (const line of call.conversation) {
        const minutes = Math.floor(line.start / 60), seconds = String(Math.floor(line.start % 60)).padStart(2, "0");
        text(details, "p", `${minutes}:${seconds} ${line.side}: ${line.text}`, "said");
      }
      said.appendChild(details);
    }
  }
}

// ---- the call in the browser ----------------------------------------------------------------------

function ring(message) {
  desk.leg = message.leg;
  desk.answered = false;
  showCall(message.call, "Incoming call");
  $("call").classList.add("ringing");
  $("ringing-actions").hidden = false;
  $("talking-actions").hidden = true;
}

async function accept() {
  const leg = desk.leg;
  $("ringing-actions").hidden = true;
  $("call").classList.remove("ringing");
  try {
    desk.mic = await navigator.mediaDevices.getUserMedia({audio: {echoCancellation: true, noiseSuppression: true}});
  } catch (error) {
    $("desk-error").textContent = `no microphone: ${error.message}`;
    send({type: "decline", leg});
    return;
  }
  const pc = desk.pc = new RTCPeerConnection({iceServers: desk.iceServers});
  for (const track of desk.mic.getAudioTracks()) pc.addTrack(track, desk.mic);
  pc.ontrack = (event) => { $("remote").srcObject = event.streams[0] || new MediaStream([event.track]); listen(event.track); };
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === "connected") {
      desk.answered = true;
      $("call-title").textContent = "On a call";
      $("talking-actions").hidden = false;
    }
  };
  send({type: "accept", leg, sdp: await offerWithCandidates(pc)});
}

function listen(track) {
  // the caller's level, for the meter; also tells what the agent hears (window.desk.heard())
  const context = new AudioContext();
  const source = context.createMediaStreamSource(new MediaStream([track]));
  desk.analyser = context.createAnalyser();
  desk.analyser.fftSize = 4096;
  source.connect(desk.analyser);
}

desk.heard = () => {
  // {level: dBFS of the loudest bin, hz: where it is}
  if (!desk.analyser) return null;
  const bins = new Float32Array(desk.analyser.frequencyBinCount);
  desk.analyser.getFloatFrequencyData(bins);
  let best = 0;
  for (let i = 1; i < bins.length; i++) if (bins[i] > bins[best]) best = i;
  return {level: bins[best], hz: best * desk.analyser.context.sampleRate / desk.analyser.fftSize};
};

function ended(reason) {
  $("call").classList.remove("ringing");
  $("ringing-actions").hidden = true;
  $("talking-actions").hidden = true;
  toggle($("mute"), false);
  toggle($("hold"), false);
  toggle($("pause-recording"), false);
  endMedia();
  if (desk.answered && desk.call) {
    $("call-title").textContent = `Call over (${reason})`;
    const choices = $("disposition");
    choices.replaceChildren();
    for (const name of desk.dispositions[desk.call.queue] || []) text(choices, "option", name).value = name;
    $("wrap-up").hidden = false;
  } else {
    $("call").hidden = true;
  }
  desk.leg = null;
}

function endMedia() {
  if (desk.pc) desk.pc.close();
  if (desk.mic) desk.mic.getTracks().forEach((track) => track.stop());
  desk.pc = desk.mic = desk.analyser = null;
}

function toggle(button, on) {
  button.setAttribute("aria-pressed", String(on));
}

function keypad() {
  for (const digit of "123456789*0#") {
    const button = text($("keypad"), "button", digit);
    button.type = "button";
    button.onclick = () => send({type: "dtmf", leg: desk.leg, digit});
  }
}

window.addEventListener("DOMContentLoaded", () => {
  keypad();
  $("sign-in").onsubmit = signInForm;
  $("sign-out").onclick = signOut;
  $("state-choice").onchange = () => { $("away-reason").hidden = $("state-choice").value !== "away"; };
  $("set-state").onclick = () => send({type: "state", state: $("state-choice").value, reason: $("away-reason").value});
  $("accept").onclick = accept;
  $("decline").onclick = () => send({type: "decline", leg: desk.leg});
  $("hangup").onclick = () => send({type: "hangup", leg: desk.leg});
  $("mute").onclick = () => {
    const on = $("mute").getAttribute("aria-pressed") !== "true";
    if (desk.mic) desk.mic.getAudioTracks().forEach((track) => { track.enabled = !on; });
    toggle($("mute"), on);
  };
  $("hold").onclick = () => {
    const on = $("hold").getAttribute("aria-pressed") !== "true";
    send({type: "hold", leg: desk.leg, on});
    toggle($("hold"), on);
  };
  $("pause-recording").onclick = () => {
    const paused = $("pause-recording").getAttribute("aria-pressed") !== "true";
    send({type: "recording", leg: desk.leg, paused});
    toggle($("pause-recording"), paused);
  };
  $("wrap-up").onsubmit = (event) => {
    event.preventDefault();
    send({type: "wrap_up", call: desk.call.id, disposition: $("disposition").value || null, note: $("note").value});
    $("wrap-up").hidden = true; $("call").hidden = true; $("note").value = "";
  };
  connect();  // a session still open: straight in; else the socket is refused and sign-in shows
});
