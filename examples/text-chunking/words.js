// Text-chunking handler (Node.js): count the words of one chunk. A plain exported function, no import from asya.
// Run by runtime/asya_runtime/handler_server.js; the manifest's handler `words.countWords` names this export.
"use strict";

function countWords(payload) {
  if (typeof payload.text !== "string") {
    throw new TypeError("payload needs 'text': a string");
  }
  const words = payload.text.split(/\s+/).filter(Boolean);
  const longest = words.reduce((best, word) => (word.length > best.length ? word : best), "");
  return { ...payload, words: words.length, longest_word: longest };
}

module.exports = { countWords };
