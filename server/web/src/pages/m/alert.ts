// A new page: a short sound and a vibration, where the browser allows them. Browsers play
// sound only after the person touched the page once, so the audio is unlocked on first touch.
let audio: AudioContext | null = null;

export function unlockSound(): void {
  if (audio) return;
  try { audio = new AudioContext(); } catch { audio = null; }
}

export function alertNewPage(): void {
  if ("vibrate" in navigator) {
    try { navigator.vibrate([200, 100, 200]); } catch { /* not allowed here */ }
  }
  if (!audio) return;
  try {
    void audio.resume();
    for (const [start, freq] of [[0, 880], [0.25, 1175]] as const) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = freq;
      gain.gain.value = 0.15;
      osc.connect(gain).connect(audio.destination);
      osc.start(audio.currentTime + start);
      osc.stop(audio.currentTime + start + 0.18);
    }
  } catch { /* no sound: the badge still shows */ }
}
