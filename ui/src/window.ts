import { useEffect } from "react";
import { getCurrentWindow } from "@tauri-apps/api/window";

/** The window title names the database and the signed-in staff member. */
export function useWindowTitle(database: string | null, staff: string | null) {
  useEffect(() => {
    const parts = ["Tollgate", database, staff].filter((p): p is string => !!p);
    const title = parts.join(" — ");
    document.title = title;
    // Needs the window's set-title permission; the document title is kept either way.
    try {
      getCurrentWindow().setTitle(title).catch(() => {});
    } catch {
      // Outside Tauri (component tests) there is no window to title.
    }
  }, [database, staff]);
}
