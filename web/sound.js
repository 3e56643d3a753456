// sound.js — the notification sound: a short, loud three-note alarm made with Web Audio
// (nothing to download, works offline), played when a critical notification arrives while
// the page is open, unless the person turned sounds off on this device (kept in
// localStorage, like the push switch: a phone on the floor and a desk in the office differ).
// Browsers start audio only after the person touched the page: the first tap or key
// unlocks it.

const SOUND_KEY = 'floorbell.sound';
const NOTES = [[988, 0], [784, 0.18], [988, 0.36]]; // Hz, start (s): B5 G5 B5
const NOTE_S = 0.16;

let context = null;

export function soundOn() {
  try { return localStorage.getItem(SOUND_KEY) !== 'off'; } catch { return true; }
}

export function setSound(on) {
  try { localStorage.setItem(SOUND_KEY, on ? 'on' : 'off'); } catch { /* private mode */ }
}

function audio() {
  const AudioContext = window.AudioContext || window.webkitAudioContext;
  if (!AudioContext) return null;
  if (!context) context = new AudioContext();
  if (context.state === 'suspended') context.resume().catch(() => {});
  return context;
}

/** Unlock audio at the person's first touch of the page (autoplay rules). */
export function initSound() {
  const unlock = () => {
    audio();
    window.removeEventListener('pointerdown', unlock, true);
    window.removeEventListener('keydown', unlock, true);
  };
  window.addEventListener('pointerdown', unlock, true);
  window.addEventListener('keydown', unlock, true);
}

/** Play the alert, unless sounds are off here; whether it played. */
export function playAlert() {
  if (!soundOn()) return false;
  const ctx = audio();
  if (!ctx) return false;
  const now = ctx.currentTime;
  for (const [frequency, start] of NOTES) {
    const tone = ctx.createOscillator();
    const gain = ctx.createGain();
    tone.type = 'square';
    tone.frequency.value = frequency;
    gain.gain.setValueAtTime(0.0001, now + start);
    gain.gain.exponentialRampToValueAtTime(0.35, now + start + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, now + start + NOTE_S);
    tone.connect(gain).connect(ctx.destination);
    tone.start(now + start);
    tone.stop(now + start + NOTE_S + 0.02);
  }
  return true;
}
