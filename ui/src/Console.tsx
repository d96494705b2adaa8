import { useState } from "react";
import { RouterProvider } from "@tanstack/react-router";
import { createConsoleRouter } from "./router";

/** The signed-in console: a fresh router per sign-in, so nobody lands on the last one's page. */
export function Console() {
  const [router] = useState(createConsoleRouter);
  return <RouterProvider router={router} />;
}
