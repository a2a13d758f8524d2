using System.Text.Json;

namespace Centrifugo.Actors.Tests.Hosting;

/// <summary>
/// The runtime settings the node executable ships with (its <c>centrifugo-actors.runtimeconfig.json</c>, the file the
/// node processes of the suite and the published image start with); docs/operations.md, "Runtime settings".
/// </summary>
[Trait(TestLane.Category, TestLane.Fast)]
public sealed class RuntimeConfigTests
{
    [Fact]
    public void The_node_ships_with_workstation_gc_and_thread_pool_workers_that_do_not_spin_before_sleeping()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "centrifugo-actors.runtimeconfig.json");
        using var document = JsonDocument.Parse(File.ReadAllText(path));
        var properties = document.RootElement.GetProperty("runtimeOptions").GetProperty("configProperties");

        Assert.Equal(0, properties.GetProperty("System.Threading.ThreadPool.UnfairSemaphoreSpinLimit").GetInt32());
        Assert.False(properties.GetProperty("System.GC.Server").GetBoolean());
        Assert.True(properties.GetProperty("System.GC.Concurrent").GetBoolean());
    }
}
