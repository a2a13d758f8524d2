using Centrifugo.Actors.Configuration;

namespace Centrifugo.Actors.Tests.Configuration;

[Trait(TestLane.Category, TestLane.Fast)]
public sealed class GoDurationTests
{
    [Theory]
    [InlineData("300ms", 300 * TimeSpan.TicksPerMillisecond)]
    [InlineData("1m30s", 90 * TimeSpan.TicksPerSecond)]
    [InlineData("1.5h", 90 * TimeSpan.TicksPerMinute)]
    [InlineData("2h45m10s", ((2 * 3600) + (45 * 60) + 10) * TimeSpan.TicksPerSecond)]
    [InlineData("100ns", 1L)]
    [InlineData("1us", 10L)]
    [InlineData("1\u00b5s", 10L)]
    [InlineData("1\u03bcs", 10L)]
    [InlineData("5s", 5 * TimeSpan.TicksPerSecond)]
    [InlineData("-1.5s", -15 * TimeSpan.TicksPerMillisecond * 100)]
    [InlineData("+2m", 2 * TimeSpan.TicksPerMinute)]
    [InlineData("0", 0L)]
    [InlineData("0s", 0L)]
    [InlineData(".5s", 5 * TimeSpan.TicksPerMillisecond * 100)]
    [InlineData("1.s", TimeSpan.TicksPerSecond)]
    [InlineData("1h1ms", TimeSpan.TicksPerHour + TimeSpan.TicksPerMillisecond)]
    public void Parses_go_duration_strings(string text, long expectedTicks)
    {
        Assert.True(GoDuration.TryParse(text, out var value, out var error), error);
        Assert.Equal(expectedTicks, value.Ticks);
    }

    [Theory]
    [InlineData("")]
    [InlineData("5")]
    [InlineData("1x")]
    [InlineData("ms")]
    [InlineData(".s")]
    [InlineData("--1s")]
    [InlineData("1.5.5s")]
    [InlineData("1 s")]
    [InlineData("99999999999999999999h")]
    public void Rejects_invalid_duration_strings(string text)
    {
        Assert.False(GoDuration.TryParse(text, out _, out var error));
        Assert.NotEmpty(error);
    }

    [Theory]
    [InlineData(0L, "0s")]
    [InlineData(300 * TimeSpan.TicksPerMillisecond, "300ms")]
    [InlineData(90 * TimeSpan.TicksPerSecond, "1m30s")]
    [InlineData(TimeSpan.TicksPerHour, "1h0m0s")]
    [InlineData(15 * TimeSpan.TicksPerMillisecond * 100, "1.5s")]
    [InlineData(15L, "1.5\u00b5s")]
    [InlineData(1L, "100ns")]
    [InlineData(((2 * 3600) + (45 * 60) + 10) * TimeSpan.TicksPerSecond, "2h45m10s")]
    [InlineData(-15 * TimeSpan.TicksPerMillisecond * 100, "-1.5s")]
    [InlineData(TimeSpan.TicksPerMillisecond + 5000, "1.5ms")]
    public void Formats_like_go_duration_string(long ticks, string expected) =>
        Assert.Equal(expected, GoDuration.Format(TimeSpan.FromTicks(ticks)));

    [Theory]
    [InlineData("1h2m3.5s")]
    [InlineData("750ms")]
    [InlineData("12\u00b5s")]
    public void Formatted_value_parses_back_to_the_same_duration(string text)
    {
        Assert.True(GoDuration.TryParse(text, out var value, out _));
        Assert.True(GoDuration.TryParse(GoDuration.Format(value), out var again, out _));
        Assert.Equal(value, again);
    }
}
