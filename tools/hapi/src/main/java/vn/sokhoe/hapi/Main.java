package vn.sokhoe.hapi;

import java.util.Arrays;

/**
 * sokhoe checked by software nobody here wrote: HAPI FHIR's validator ({@link Validate}) and
 * HAPI FHIR's generic client ({@link Client}), issue 16 items 6 and 8.
 *
 * <pre>
 *   validate [--package DIR_or_TGZ]... FILE...   one JSON line per resource, its issues
 *   client BASE_URL TOKEN                         a scripted REST session; exit 1 on failure
 * </pre>
 */
public final class Main {
  private Main() {}

  public static void main(String[] args) throws Exception {
    if (args.length == 0) {
      usage();
    }
    String[] rest = Arrays.copyOfRange(args, 1, args.length);
    switch (args[0]) {
      case "validate" -> System.exit(Validate.run(rest));
      case "client" -> System.exit(Client.run(rest));
      default -> usage();
    }
  }

  static void usage() {
    System.err.println(
        "usage: validate [--package DIR_or_TGZ]... FILE... | client BASE_URL TOKEN");
    System.exit(2);
  }

  /** A JSON string literal (the output is read by Python's json module). */
  static String quote(String s) {
    if (s == null) {
      return "null";
    }
    StringBuilder b = new StringBuilder(s.length() + 2).append('"');
    for (char c : s.toCharArray()) {
      switch (c) {
        case '"' -> b.append("\\\"");
        case '\\' -> b.append("\\\\");
        case '\n' -> b.append("\\n");
        case '\r' -> b.append("\\r");
        case '\t' -> b.append("\\t");
        default -> {
          if (c < 0x20) {
            b.append(String.format("\\u%04x", (int) c));
          } else {
            b.append(c);
          }
        }
      }
    }
    return b.append('"').toString();
  }
}
