using Centrifugo.Actors.Configuration;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Tests.Configuration;

[Trait(TestLane.Category, TestLane.Fast)]
public sealed class LogConfigTests
{
    [Fact]
    public void Defaults_are_info_and_text() =>
        Assert.Equal(new LogOptions { Level = LogLevel.Information, Format = LogFormat.Text }, Cfg.Load("""{"api":{"key":"k"}}""").Log);

    [Fact]
    public void Centrifugo_log_level_and_our_format_are_read_with_env_overrides()
    {
        Assert.Equal(new LogOptions { Level = LogLevel.Debug, Format = LogFormat.Json },
            Cfg.Load("""{"api":{"key":"k"},"log":{"level":"debug","format":"json","file":"ignored"}}""").Log);
        Assert.Equal(new LogOptions { Level = LogLevel.Warning, Format = LogFormat.Json },
            Cfg.Load("""{"api":{"key":"k"},"log":{"level":"debug"}}""", ("CENTRIFUGO_LOG_LEVEL", "warn"),
                ("CENTRIFUGO_ACTORS_LOG_FORMAT", "json")).Log);
        Assert.Equal(LogLevel.Error,
            Cfg.Load("""{"api":{"key":"k"}}""", ("CENTRIFUGO_LOG_LEVEL", "warn"), ("CENTRIFUGO_ACTORS_LOG_LEVEL", "error")).Log.Level);
    }

    [Theory]
    [InlineData("""{"level":"verbose"}""", "in log: level \"verbose\" is not one of none, trace, debug, info, warn, error")]
    [InlineData("""{"format":"jsn"}""", "in log: format \"jsn\" is not one of text, json (did you mean \"json\"?)")]
    [InlineData("""{"level":3}""", "in log: level must be a string")]
    public void Bad_log_settings_are_refused(string log, string expected) =>
        Assert.StartsWith(expected, Cfg.Error($$"""{"api":{"key":"k"},"log":{{log}}}"""), StringComparison.Ordinal);
}
