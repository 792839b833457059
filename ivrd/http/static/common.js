// What the desk and the phone pages share: reaching ivrd, signing in, WebRTC offers, a call's path.
"use strict";

const $ = (id) => document.getElementById(id);

function socketUrl(path) {
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}${path}`;
}

async function signIn(agent, password) {
  // the session cookie on success; else the reason, for the form
  const response = await fetch("/desk/signin", {
    method: "POST", headers: {"Content-Type": "application/json"}, credentials: "same-origin",
    body: JSON.stringify({agent, password}),
  });
  return response.ok ? null : ((await response.json()).error || "could not sign in");
}

async function offerWithCandidates(pc) {
  // ivrd takes the offer whole, candidates included: wait for them (a second at most)
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.addEventListener("icegatheringstatechange", () => { if (pc.iceGatheringState === "complete") resolve(); });
    setTimeout(resolve, 1000);
  });
  return pc.localDescription.sdp;
}

function describeStep(step) {
  // one step of a call's path through the flows, as a person reads it
  let line = `${step.step}: ${step.event}`;
  if (step.key) line += ` key ${step.key}`;
  if (step.said !== undefined) line += ` said "${step.said}" (${Math.round((step.confidence || 0) * 100)}% sure)`;
  if (step.heard) line += ` heard ${step.heard.join(", ")}`;
  if (step.goto) line += ` → ${step.goto}`;
  if (step.queue) line += ` ${step.queue}`;
  return line;
}

function showPath(list, path) {
  list.replaceChildren();
  for (const step of path) {
    const item = document.createElement("li");
    item.textContent = describeStep(step);
    if (step.said !== undefined) item.className = "speech";
    list.appendChild(item);
  }
}
