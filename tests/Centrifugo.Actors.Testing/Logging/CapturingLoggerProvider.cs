using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Testing;

/// <summary>
/// Keeps every formatted log line for assertions, one line per event:
/// <c>Level Category [EventId] message {Field=value, …} exception</c>. With an <c>echo</c> (a test's
/// <c>ITestOutputHelper.WriteLine</c>) every line is also written to the test's output, so a failing test shows the
/// node's logs. Thread-safe.
/// </summary>
internal sealed class CapturingLoggerProvider(Action<string>? echo = null) : ILoggerProvider
{
    private readonly ConcurrentQueue<string> _lines = new();

    public IReadOnlyList<string> Lines => _lines.ToArray();

    public string All => string.Join('\n', _lines);

    /// <summary>A factory that logs every level to this provider only.</summary>
    public ILoggerFactory CreateFactory() => LoggerFactory.Create(b => b.AddProvider(this).SetMinimumLevel(LogLevel.Trace));

    /// <summary>A typed logger for one class under test.</summary>
    public ILogger<T> CreateLogger<T>() => new Logger<T>(new FactoryOf(this));

    /// <summary>
    /// Waits for a line: the warnings about a row or record are written after the effect a test observes (the
    /// commit that moved it, the produce that dead-lettered it), so a test that saw the effect polls for the line.
    /// </summary>
    public Task WaitForAsync(Func<string, bool> match, string what) =>
        Poll.UntilAsync(() => _lines.Any(match), $"log line: {what}");

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private void Add(string line)
    {
        _lines.Enqueue(line);
        try
        {
            echo?.Invoke(line);
        }
        catch (InvalidOperationException)
        {
            // xUnit's output helper refuses lines once its test has ended (a node still logging while it stops).
        }
    }

    private sealed class Logger(CapturingLoggerProvider owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(
            LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var values = state is IEnumerable<KeyValuePair<string, object?>> kv
                ? string.Join(", ", kv.Select(p => $"{p.Key}={p.Value}"))
                : "";
            owner.Add($"{logLevel} {category} [{eventId.Id}] {formatter(state, exception)} {{{values}}} {exception}");
        }
    }

    private sealed class FactoryOf(CapturingLoggerProvider provider) : ILoggerFactory
    {
        public ILogger CreateLogger(string categoryName) => provider.CreateLogger(categoryName);

        public void AddProvider(ILoggerProvider provider)
        {
        }

        public void Dispose()
        {
        }
    }
}
