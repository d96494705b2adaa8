import { defineConfig } from "vite";

// The console is embedded into the Tauri binary from ui/dist; nothing is loaded at run time.
export default defineConfig({
  clearScreen: false,
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
  },
});
