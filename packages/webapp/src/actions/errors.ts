// What an action refuses with: an HTTP status and one sentence (and, for a form, the field it
// is about). HTML routes turn it into a flash message or a re-rendered form, the API into
// {error: sentence}.
import { HttpError } from "../auth.js";

export class ActionError extends HttpError {
  constructor(
    status: number,
    message: string,
    /** The form field the sentence is about, if any. */
    readonly field?: string,
  ) {
    super(status, message);
    this.name = "ActionError";
  }
}
