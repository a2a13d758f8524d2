using System.Globalization;
using System.Text;

namespace Centrifugo.Actors.Configuration;

/// <summary>
/// Go's <c>time.ParseDuration</c> / <c>Duration.String</c>, because Centrifugo configs carry durations as Go
/// strings ("300ms", "1m30s", "1.5h") and users compare our printed config with Centrifugo's.
/// Precision is TimeSpan's (100 ns); finer parts of a value are truncated.
/// </summary>
internal static class GoDuration
{
    private const long NanosPerTick = 100;

    private static readonly (string Unit, long Nanos)[] Units =
    [
        ("ns", 1L),
        ("us", 1_000L),
        ("\u00b5s", 1_000L), // µ micro sign, as Go prints it
        ("\u03bcs", 1_000L), // μ Greek mu, also accepted by Go
        ("ms", 1_000_000L),
        ("s", 1_000_000_000L),
        ("m", 60_000_000_000L),
        ("h", 3_600_000_000_000L),
    ];

    /// <summary>Parses a Go duration string. Returns false (and an error text without the input) when invalid.</summary>
    public static bool TryParse(string text, out TimeSpan value, out string error)
    {
        value = TimeSpan.Zero;
        error = "";
        var s = text;
        var negative = false;
        if (s.Length > 0 && (s[0] == '-' || s[0] == '+'))
        {
            negative = s[0] == '-';
            s = s[1..];
        }

        if (s == "0")
        {
            return true;
        }

        if (s.Length == 0)
        {
            error = "is not a valid duration (expected a Go duration such as \"300ms\", \"1m30s\" or \"1.5h\")";
            return false;
        }

        decimal totalNanos = 0;
        var i = 0;
        while (i < s.Length)
        {
            var start = i;
            while (i < s.Length && char.IsAsciiDigit(s[i]))
            {
                i++;
            }

            var hasInt = i > start;
            var numberEnd = i;
            var hasFraction = false;
            if (i < s.Length && s[i] == '.')
            {
                i++;
                var fractionStart = i;
                while (i < s.Length && char.IsAsciiDigit(s[i]))
                {
                    i++;
                }

                hasFraction = i > fractionStart;
                numberEnd = i;
            }

            if (!hasInt && !hasFraction)
            {
                error = "is not a valid duration (expected a Go duration such as \"300ms\", \"1m30s\" or \"1.5h\")";
                return false;
            }

            var unitStart = i;
            while (i < s.Length && s[i] != '.' && !char.IsAsciiDigit(s[i]))
            {
                i++;
            }

            if (unitStart == i)
            {
                error = "is missing a unit (use ns, us, µs, ms, s, m or h, e.g. \"300ms\")";
                return false;
            }

            var unit = s[unitStart..i];
            var unitNanos = Array.Find(Units, u => u.Unit == unit).Nanos;
            if (unitNanos == 0)
            {
                error = "has an unknown unit (use ns, us, µs, ms, s, m or h)";
                return false;
            }

            var numberText = s[start..numberEnd];
            if (numberText.EndsWith('.'))
            {
                numberText += "0";
            }

            if (numberText.StartsWith('.'))
            {
                numberText = "0" + numberText;
            }

            if (!decimal.TryParse(numberText, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var number))
            {
                error = "is out of range";
                return false;
            }

            try
            {
                totalNanos += number * unitNanos;
            }
            catch (OverflowException)
            {
                error = "is out of range";
                return false;
            }

            if (totalNanos > long.MaxValue)
            {
                error = "is out of range";
                return false;
            }
        }

        var ticks = (long)(totalNanos / NanosPerTick);
        value = TimeSpan.FromTicks(negative ? -ticks : ticks);
        return true;
    }

    /// <summary>Integer nanoseconds, the other JSON form Centrifugo accepts.</summary>
    public static TimeSpan FromNanoseconds(long nanoseconds) => TimeSpan.FromTicks(nanoseconds / NanosPerTick);

    /// <summary>Formats like Go's <c>Duration.String()</c>: "0s", "300ms", "1.5µs", "1m30s", "1h0m0s".</summary>
    public static string Format(TimeSpan value)
    {
        // Ticks * 100 fits in ulong for every TimeSpan (|ticks| < 2^63 / 100 is not guaranteed, so use UInt128).
        var negative = value.Ticks < 0;
        var nanos = (UInt128)(negative ? -(Int128)value.Ticks : value.Ticks) * NanosPerTick;
        var sb = new StringBuilder();
        if (nanos < 1_000_000_000)
        {
            if (nanos == 0)
            {
                return "0s";
            }

            string unit;
            int precision;
            if (nanos < 1_000)
            {
                unit = "ns";
                precision = 0;
            }
            else if (nanos < 1_000_000)
            {
                unit = "\u00b5s";
                precision = 3;
            }
            else
            {
                unit = "ms";
                precision = 6;
            }

            AppendWithFraction(sb, nanos, precision);
            sb.Append(unit);
        }
        else
        {
            var seconds = nanos / 1_000_000_000;
            var fraction = nanos % 1_000_000_000;
            var minutes = seconds / 60;
            var hours = minutes / 60;
            if (hours > 0)
            {
                sb.Append(hours.ToString(CultureInfo.InvariantCulture)).Append('h');
            }

            if (minutes > 0)
            {
                sb.Append((minutes % 60).ToString(CultureInfo.InvariantCulture)).Append('m');
            }

            AppendWithFraction(sb, ((seconds % 60) * 1_000_000_000) + fraction, 9);
            sb.Append('s');
        }

        return negative ? "-" + sb : sb.ToString();
    }

    private static void AppendWithFraction(StringBuilder sb, UInt128 value, int precision)
    {
        var scale = UInt128.One;
        for (var i = 0; i < precision; i++)
        {
            scale *= 10;
        }

        sb.Append((value / scale).ToString(CultureInfo.InvariantCulture));
        var fraction = value % scale;
        if (fraction != 0)
        {
            var digits = fraction.ToString(CultureInfo.InvariantCulture).PadLeft(precision, '0').TrimEnd('0');
            sb.Append('.').Append(digits);
        }
    }
}
