/**
 * Go's reference-time layouts ("2006-01-02T15:04:05Z07:00"), tokenised as Go's nextStdChunk does, for
 * time.format and time.parse_ns. https://pkg.go.dev/time#pkg-constants
 */
import { type Broken, MONTHS, WEEKDAYS } from "./civil.ts";

export const NAMED_LAYOUTS: Record<string, string> = {
  ANSIC: "Mon Jan _2 15:04:05 2006",
  UnixDate: "Mon Jan _2 15:04:05 MST 2006",
  RubyDate: "Mon Jan 02 15:04:05 -0700 2006",
  RFC822: "02 Jan 06 15:04 MST",
  RFC822Z: "02 Jan 06 15:04 -0700",
  RFC850: "Monday, 02-Jan-06 15:04:05 MST",
  RFC1123: "Mon, 02 Jan 2006 15:04:05 MST",
  RFC1123Z: "Mon, 02 Jan 2006 15:04:05 -0700",
  RFC3339: "2006-01-02T15:04:05Z07:00",
  RFC3339Nano: "2006-01-02T15:04:05.999999999Z07:00",
};

/** A layout element: a literal, or a std chunk (with the digits and separator of a fractional second). */
export type Chunk = { literal: string } | { std: string; digits?: number; separator?: string };

const STD_PREFIXES = [
  "January",
  "Jan",
  "Monday",
  "Mon",
  "MST",
  "002",
  "01",
  "02",
  "03",
  "04",
  "05",
  "06",
  "15",
  "1",
  "2006",
  "2",
  "__2",
  "_2",
  "3",
  "4",
  "5",
  "PM",
  "pm",
  "-07:00:00",
  "-070000",
  "-07:00",
  "-0700",
  "-07",
  "Z07:00:00",
  "Z070000",
  "Z07:00",
  "Z0700",
  "Z07",
];

export function isDigit(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  return c >= 48 && c <= 57;
}

export function tokenize(layout: string): Chunk[] {
  const chunks: Chunk[] = [];
  let literal = "";
  let i = 0;
  outer: while (i < layout.length) {
    const c = layout[i] as string;
    if ((c === "." || c === ",") && (layout[i + 1] === "0" || layout[i + 1] === "9")) {
      const digit = layout[i + 1] as string;
      let j = i + 1;
      while (layout[j] === digit) j++;
      if (!isDigit(layout, j)) {
        if (literal) chunks.push({ literal });
        literal = "";
        chunks.push({ std: digit === "0" ? "frac0" : "frac9", digits: j - i - 1, separator: c });
        i = j;
        continue;
      }
    }
    if (c === "_" && layout.startsWith("_2006", i)) {
      literal += "_";
      i++;
      continue;
    }
    for (const prefix of STD_PREFIXES) {
      if (layout.startsWith(prefix, i)) {
        if (literal) chunks.push({ literal });
        literal = "";
        chunks.push({ std: prefix });
        i += prefix.length;
        continue outer;
      }
    }
    literal += c;
    i++;
  }
  if (literal) chunks.push({ literal });
  return chunks;
}

const pad = (n: number, width: number, fill = "0") => String(n).padStart(width, fill);

function formatOffset(offset: number, colon: boolean, withMinutes: boolean, withSeconds: boolean): string {
  const sign = offset < 0 ? "-" : "+";
  const abs = Math.abs(offset);
  const hours = pad(Math.floor(abs / 3600), 2);
  const minutes = pad(Math.floor((abs % 3600) / 60), 2);
  const seconds = pad(abs % 60, 2);
  const sep = colon ? ":" : "";
  return `${sign}${hours}${withMinutes ? `${sep}${minutes}` : ""}${withSeconds ? `${sep}${seconds}` : ""}`;
}

export function formatTime(t: Broken, layout: string): string {
  let out = "";
  for (const chunk of tokenize(layout)) {
    if ("literal" in chunk) {
      out += chunk.literal;
      continue;
    }
    const hour12 = t.hour % 12 === 0 ? 12 : t.hour % 12;
    switch (chunk.std) {
      case "January":
        out += MONTHS[t.month - 1];
        break;
      case "Jan":
        out += (MONTHS[t.month - 1] as string).slice(0, 3);
        break;
      case "Monday":
        out += WEEKDAYS[t.weekday];
        break;
      case "Mon":
        out += (WEEKDAYS[t.weekday] as string).slice(0, 3);
        break;
      case "MST":
        out += t.abbreviation !== "" ? t.abbreviation : formatOffset(t.offset, false, true, false);
        break;
      case "2006":
        out += t.year < 0 ? `-${pad(-t.year, 4)}` : pad(t.year, 4);
        break;
      case "06":
        out += pad(((t.year % 100) + 100) % 100, 2);
        break;
      case "01":
        out += pad(t.month, 2);
        break;
      case "1":
        out += String(t.month);
        break;
      case "02":
        out += pad(t.day, 2);
        break;
      case "_2":
        out += pad(t.day, 2, " ");
        break;
      case "2":
        out += String(t.day);
        break;
      case "002":
        out += pad(t.yearDay, 3);
        break;
      case "__2":
        out += pad(t.yearDay, 3, " ");
        break;
      case "15":
        out += pad(t.hour, 2);
        break;
      case "03":
        out += pad(hour12, 2);
        break;
      case "3":
        out += String(hour12);
        break;
      case "04":
        out += pad(t.minute, 2);
        break;
      case "4":
        out += String(t.minute);
        break;
      case "05":
        out += pad(t.second, 2);
        break;
      case "5":
        out += String(t.second);
        break;
      case "PM":
        out += t.hour >= 12 ? "PM" : "AM";
        break;
      case "pm":
        out += t.hour >= 12 ? "pm" : "am";
        break;
      case "frac0":
        out += `${chunk.separator}${pad(t.nanosecond, 9).slice(0, chunk.digits)}`;
        break;
      case "frac9": {
        const digits = pad(t.nanosecond, 9).slice(0, chunk.digits).replace(/0+$/, "");
        if (digits !== "") out += `${chunk.separator}${digits}`;
        break;
      }
      default: {
        const iso = chunk.std.startsWith("Z");
        if (iso && t.offset === 0) {
          out += "Z";
          break;
        }
        const shape = chunk.std.slice(1);
        out += formatOffset(
          t.offset,
          shape.includes(":"),
          shape.length > 2,
          shape.length > 6 || shape === "070000",
        );
      }
    }
  }
  return out;
}
