import "./style.css";
import { commands, type ApiStatus, type CommandError, type Status } from "./bindings";

const REFRESH_MS = 5000;

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`#${id} is missing from index.html`);
  return found as T;
}

const view = {
  database: element("database"),
  backend: element("backend"),
  users: element("users"),
  refresh: element<HTMLButtonElement>("refresh"),
  apiSwitch: element<HTMLButtonElement>("api-switch"),
  apiState: element("api-state"),
  apiAddr: element<HTMLInputElement>("api-addr"),
  apiLink: element("api-link"),
  statusError: element("status-error"),
  apiError: element("api-error"),
};

const BACKEND_NAMES: Record<Status["backend"], string> = {
  sqlite: "SQLite",
  postgres: "PostgreSQL",
};

let api: ApiStatus | null = null;
let busy = false;
function showError(where: HTMLElement, error: CommandError | null): void {
  where.hidden = error === null;
  where.textContent = error?.message ?? "";
}

function renderApi(next: ApiStatus): void {
  api = next;
  view.apiSwitch.setAttribute("aria-checked", String(next.running));
  view.apiSwitch.disabled = busy;
  view.apiState.textContent = next.running ? `On, listening on ${next.addr}` : "Off";
  view.apiState.classList.toggle("on", next.running);
  view.apiAddr.disabled = next.running || busy;
  view.apiAddr.placeholder = next.default_addr;
  if (next.running && next.addr) {
    view.apiAddr.value = next.addr;
    view.apiLink.textContent = `Try: curl http://${next.addr}/health`;
  }
  view.apiLink.hidden = !next.running;
}

function renderStatus(status: Status): void {
  view.database.textContent = status.database;
  view.database.title = status.database;
  view.backend.textContent = BACKEND_NAMES[status.backend];
  view.users.textContent = status.users.toLocaleString();
  renderApi(status.api);
}

async function refresh(): Promise<void> {
  const result = await commands.status();
  if (result.status === "ok") {
    renderStatus(result.data);
    showError(view.statusError, null);
  } else {
    showError(view.statusError, result.error);
  }
}

async function toggleApi(): Promise<void> {
  if (busy || api === null) return;
  busy = true;
  renderApi(api);
  const result = api.running
    ? await commands.stopApi()
    : await commands.startApi(view.apiAddr.value.trim() || null);
  busy = false;
  if (result.status === "ok") {
    showError(view.apiError, null);
    renderApi(result.data);
  } else {
    showError(view.apiError, result.error);
    renderApi(api);
    if (result.error.code === "invalid_address") view.apiAddr.focus();
  }
}

view.apiSwitch.addEventListener("click", () => void toggleApi());
view.refresh.addEventListener("click", () => void refresh());
view.apiAddr.addEventListener("keydown", (event) => {
  if (event.key === "Enter") void toggleApi();
});

void refresh();
setInterval(() => {
  if (!document.hidden && !busy) void refresh();
}, REFRESH_MS);
