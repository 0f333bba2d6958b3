// Recovery codes as a page shows them once: a list, and buttons to copy or download them.
import { $ } from "./dom.js";

export function showRecoveryCodes(username, codes, { list, copy, download }) {
  $(list).replaceChildren(...codes.map((code) => {
    const item = document.createElement("li");
    item.textContent = code;
    return item;
  }));
  $(copy).onclick = async () => {
    await navigator.clipboard.writeText(codes.join("\n"));
    $("status").textContent = "Recovery codes copied.";
  };
  $(download).onclick = () => {
    const file = new Blob([`Cypher recovery codes for ${username}\n\n${codes.join("\n")}\n`], { type: "text/plain" });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(file);
    link.download = `cypher-recovery-codes-${username}.txt`;
    link.click();
    URL.revokeObjectURL(link.href);
  };
}
