// Spinefoot playground: copy buttons, and one source of input at a time. No network calls.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const status = document.getElementById("copied");
  for (const button of document.querySelectorAll("button.copy")) {
    button.addEventListener("click", () => {
      const text = document.getElementById(button.dataset.copy).textContent;
      const done = (message) => { if (status) status.textContent = message; };
      if (!navigator.clipboard) { done("Select the text and copy it."); return; }
      navigator.clipboard.writeText(text).then(() => done("Copied."),
                                               () => done("Select the text and copy it."));
    });
  }
  const sample = document.getElementById("sample");
  const bundle = document.getElementById("bundle");
  const file = document.getElementById("file");
  sample.addEventListener("change", () => { bundle.value = ""; file.value = ""; });
  bundle.addEventListener("input", () => { sample.value = ""; });
  file.addEventListener("change", () => { sample.value = ""; bundle.value = ""; });
});
