/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The console is embedded into the Tauri binary from ui/dist; nothing is loaded at run time.
export default defineConfig({
  plugins: [react()],
  clearScreen: false,
  // docs/revenue.md is bundled: the revenue screen shows each figure's definition from it.
  server: { fs: { allow: [".", "../docs"] } },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    // One bundle embedded in the binary and read from disk: no network cost to split for.
    chunkSizeWarningLimit: 1024,
  },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.{ts,tsx}"],
    setupFiles: ["src/test-setup.ts"],
  },
});
