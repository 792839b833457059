// The browser phone: call a flow, press keys, talk, and watch the path the flow takes.
"use strict";

const phone = {socket: null, pc: null, mic: null, pathTimer: null};
window.phone = phone;

function send(message) {
  if (phone.socket && phone.socket.readyState === WebSocket.OPEN) phone.socket.send(JSON.stringify(message));
}

function connect() {
  phone.socket = new WebSocket(socketUrl("/desk/phone/socket"));
  phone.socket.onmessage = (event) => handle(JSON.parse(event.data));
  phone.socket.onclose = () => { hangUpMedia(); $("phone").hidden = true; $("sign-in").hidden = false; };
}

function handle(message) {
  switch (message.type) {
    case "hello": {
      $("who").textContent = message.agent;
      $("sign-in").hidden = true; $("phone").hidden = false;
      const numbers = $("number");
      numbers.replaceChildren();
      for (const entry of message.numbers) {
        const option = document.createElement("option");
        option.value = entry.number;
        option.textContent = `${entry.number}: ${entry.flow}${entry.description ? ` (${entry.description})` : ""}`;
        numbers.appendChild(option);
      }
      break;
    }
    case "answer": phone.pc.setRemoteDescription({type: "answer", sdp: message.sdp}); break;
    case "connected":
      $("status").textContent = "Connected to the flow.";
      phone.pathTimer = setInterval(() => send({type: "path"}), 1000);
      break;
    case "path": showPath($("path"), message.call.path || []); break;
    case "ended": $("status").textContent = `Call ended (${message.reason}).`; send({type: "path"}); hangUpMedia(); break;
    case "error": $("phone-error").textContent = message.message; break;
  }
}

async function dial() {
  $("phone-error").textContent = "";
  $("path").replaceChildren();
  try {
    phone.mic = await navigator.mediaDevices.getUserMedia({audio: true});
  } catch (error) {
    $("phone-error").textContent = `no microphone: ${error.message}`;
    return;
  }
  const pc = phone.pc = new RTCPeerConnection();
  for (const track of phone.mic.getAudioTracks()) pc.addTrack(track, phone.mic);
  pc.ontrack = (event) => { $("remote").srcObject = event.streams[0] || new MediaStream([event.track]); };
  const sdp = await offerWithCandidates(pc);
  $("status").textContent = `Calling ${$("number").value}...`;
  $("dial").disabled = true; $("hangup").disabled = false;
  send({type: "call", number: $("number").value, sdp});
}

function hangUpMedia() {
  clearInterval(phone.pathTimer);
  if (phone.pc) phone.pc.close();
  if (phone.mic) phone.mic.getTracks().forEach((track) => track.stop());
  phone.pc = phone.mic = null;
  $("dial").disabled = false; $("hangup").disabled = true;
}

window.addEventListener("DOMContentLoaded", () => {
  for (const digit of "123456789*0#") {
    const button = document.createElement("button");
    button.type = "button"; button.textContent = digit;
    button.onclick = () => send({type: "dtmf", digit});
    $("keypad").appendChild(button);
  }
  $("dial").onclick = dial;
  $("hangup").onclick = () => send({type: "hangup"});
  $("sign-in").onsubmit = async (event) => {
    event.preventDefault();
    const problem = await signIn($("agent").value, $("password").value);
    $("password").value = "";
    $("sign-in-error").textContent = problem || "";
    if (!problem) connect();
  };
  connect();
});
